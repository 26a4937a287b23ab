"""track2.txt: exact writer output, both real-world read forms, and every malformed-file problem."""
import numpy as np
import pytest

from post_processing.submission import SubmissionError, read_track2, validate_track2, write_track2

NQ, NG, K = 3, 120, 100
NAMES = [f"{i:06d}.jpg" for i in range(1, NG + 1)]


def rankings():
    rng = np.random.default_rng(0)
    return np.stack([rng.permutation(NG) for _ in range(NQ)])


def lines(r):
    return [" ".join(str(v + 1) for v in row[:K]) for row in r]


def put(tmp_path, text, name="track2.txt"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


def test_write_produces_exact_format_and_reads_back(tmp_path):
    r = rankings()
    path = str(tmp_path / "out" / "track2.txt")
    write_track2(path, r)
    data = open(path, "rb").read()
    assert data == ("\n".join(lines(r)) + "\n").encode()
    assert b" \n" not in data and data.endswith(b"\n")
    assert read_track2(path) == r[:, :K].tolist()
    assert validate_track2(path, NQ, NG) == []


def test_failed_write_leaves_previous_file_untouched(tmp_path):
    path = str(tmp_path / "track2.txt")
    write_track2(path, rankings())
    before = open(path, "rb").read()
    bad = rankings()
    bad[1, 5] = bad[1, 6]
    with pytest.raises(ValueError, match="row 1: repeated"):
        write_track2(path, bad)
    with pytest.raises(ValueError, match="columns"):
        write_track2(path, rankings()[:, :50])
    with pytest.raises(ValueError, match=r"row 0: gallery index \d+ out of range \(expected 0 <= index < 100\)"):
        write_track2(path, rankings(), num_gallery=100)
    assert open(path, "rb").read() == before
    assert [p.name for p in tmp_path.iterdir()] == ["track2.txt"]


def test_file_name_form_reads_with_and_without_gallery_names(tmp_path):
    r = rankings()
    text = "\n".join(" ".join(NAMES[v] for v in row[:K]) for row in r) + "\n"
    path = put(tmp_path, text)
    assert read_track2(path) == r[:, :K].tolist()  # AIC-style: the number in the name
    shuffled = list(reversed(NAMES))  # names resolved by position in the list, not by their number
    assert read_track2(path, gallery_names=shuffled) == [[NG - 1 - v for v in row[:K]] for row in r]
    for problems in (validate_track2(path, NQ, NG), validate_track2(path, NQ, NG, gallery_names=NAMES)):
        assert len(problems) == 1 and "file names" in problems[0] and "1-based gallery indices" in problems[0]


def test_whitespace_variants_are_read_but_reported_by_validate(tmp_path):
    body = lines(rankings())
    text = "\ufeff" + "\r\n".join(line.replace(" ", "  \t", 3) + " " for line in body)  # no final newline
    path = put(tmp_path, text)
    assert read_track2(path) == rankings()[:, :K].tolist()
    report = " ".join(validate_track2(path, NQ, NG))
    for problem in ("byte-order mark", "(\\r\\n) line ends", "without tabs or leading/trailing spaces",
                    "no newline at the end"):
        assert problem in report, (problem, report)


def malformed(kind):
    """(file body lines, expected line number, expected message fragment) for one defect."""
    body = lines(rankings())
    if kind == "too_few_lines":
        return body[:2], 3, "missing line(s): file has 2 lines, expected 3"
    if kind == "too_many_lines":
        return body + [body[0]], 4, "extra line(s): file has 4 lines, expected 3"
    if kind == "short_line":
        body[1] = body[1].rsplit(" ", 1)[0]
        return body, 2, "99 entries, expected 100"
    if kind == "long_line":
        body[2] += " 120" if "120" not in body[2].split() else " 119"
        return body, 3, None  # duplicate or not, the count is wrong
    if kind == "duplicate":
        toks = body[0].split()
        toks[-1] = toks[0]
        body[0] = " ".join(toks)
        return body, 1, f"duplicate id(s): {toks[0]}"
    if kind == "out_of_range_high":
        body[1] = body[1].replace(body[1].split()[3], "121", 1)
        return body, 2, "out of range 1..120: 121"
    if kind == "out_of_range_zero":
        body[2] = "0 " + body[2].split(" ", 1)[1]
        return body, 3, "out of range 1..120: 0"
    if kind == "non_integer":
        body[0] = "12.5 " + body[0].split(" ", 1)[1]
        return body, 1, "non-integer token '12.5'"
    if kind == "unknown_name":
        body[1] = "car.jpg " + body[1].split(" ", 1)[1]
        return body, 2, "unknown file name 'car.jpg'"
    if kind == "empty_line":
        return body[:1] + [""] + body[1:2], 2, "empty line"
    raise AssertionError(kind)


KINDS = ["too_few_lines", "too_many_lines", "short_line", "long_line", "duplicate", "out_of_range_high",
         "out_of_range_zero", "non_integer", "unknown_name", "empty_line"]


@pytest.mark.parametrize("kind", KINDS)
def test_validator_reports_each_defect_with_its_line(tmp_path, kind):
    body, lineno, fragment = malformed(kind)
    path = put(tmp_path, "\n".join(body) + "\n")
    problems = validate_track2(path, NQ, NG)
    assert problems, kind
    assert all(p.startswith(f"{path}:") for p in problems)
    hits = [p for p in problems if p.startswith(f"{path}:{lineno}: ")]
    assert hits, problems
    if fragment:
        assert any(fragment in p for p in hits), problems
    if kind == "long_line":
        assert any("101 entries, expected 100" in p for p in hits), problems


def test_validator_reports_every_problem_in_line_order(tmp_path):
    body = lines(rankings())
    body[0] = "x " + body[0].split(" ", 1)[1]
    body[2] = body[2].rsplit(" ", 1)[0]
    path = put(tmp_path, "\n".join(body[:1] + ["", body[2]]) + "\n")
    problems = validate_track2(path, 4, NG)
    numbers = [int(p[len(path) + 1:].split(":", 1)[0]) for p in problems]
    assert numbers == sorted(numbers) and {1, 2, 3, 4} <= set(numbers), problems


def test_undecodable_bytes_and_missing_file(tmp_path):
    body = lines(rankings())
    path = put(tmp_path, ("\n".join(body[:2]) + "\n").encode() + b"\xff\xfe 1 2\n")
    assert any(p.startswith(f"{path}:3: undecodable bytes") for p in validate_track2(path, NQ, NG))
    missing = str(tmp_path / "nope.txt")
    assert validate_track2(missing, NQ, NG) == [f"{missing}:0: cannot read file (No such file or directory)"]


def test_strict_reader_raises_with_all_parse_problems(tmp_path):
    body = lines(rankings())
    body[0] = "abc " + body[0].split(" ", 1)[1]
    body[2] = "0 " + body[2].split(" ", 1)[1]
    path = put(tmp_path, "\n".join(body) + "\n")
    with pytest.raises(SubmissionError) as err:
        read_track2(path)
    assert [p.split(": ", 1)[0] for p in err.value.problems] == [f"{path}:1", f"{path}:3"]
    assert "non-integer token 'abc'" in str(err.value) and "ids are 1-based, got 0" in str(err.value)


def test_gallery_names_must_match_num_gallery(tmp_path):
    path = put(tmp_path, "\n".join(lines(rankings())) + "\n")
    with pytest.raises(ValueError, match="gallery_names has 119 names"):
        validate_track2(path, NQ, NG, gallery_names=NAMES[:-1])
