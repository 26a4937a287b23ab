# Sourced by demo.sh and extract_feature_val.sh: run their model jobs (train, extract) N at a time.
#
# The demo's tiny models use a second thread poorly (a ResNet-18 training step at 48x64 takes only
# ~1.2x as long on one thread as on two), so on a 2-core machine two jobs side by side with one
# thread each finish sooner than the same jobs one after the other with two threads. A job's numbers
# depend on its thread count (oneDNN splits reductions by thread): N=1 keeps those of one-at-a-time
# runs with every core.
#
#   jobs_init N            at most N jobs at once (capped at the cores); each gets cores/N threads
#                          (OMP_NUM_THREADS) when N > 1; with N=1 every job runs in the foreground
#   jobs_start NAME LOG CMD...
#                          N=1: runs CMD now, its output on the terminal; N>1: starts it in the
#                          background with its output in LOG, first waiting for a job to end when N
#                          are running
#   jobs_wait_all          waits for every running job
#   jobs_stop              stops the running jobs and their children (for an exit trap)
# When a background job ends well, the caller's `job_done NAME LOG SECONDS` runs (define it); when one
# fails, its LOG goes to stderr, the other jobs are stopped and the script exits with status 1.
# Names and log paths must not contain spaces or '|'.

jobs_init() {
    JOBS_CORES=$(nproc 2>/dev/null || echo 1)
    JOBS_MAX=$1
    case $JOBS_MAX in
        ''|*[!0-9]*|0) echo "jobs: expected a positive number of jobs, got '$JOBS_MAX'" >&2; exit 1 ;;
    esac
    [ "$JOBS_MAX" -le "$JOBS_CORES" ] || JOBS_MAX=$JOBS_CORES
    JOBS_THREADS=$((JOBS_CORES / JOBS_MAX))
    JOBS_RUNNING=""
    JOBS_COUNT=0
    JOBS_DIR=""
}

jobs_start() {
    if [ "$JOBS_MAX" -eq 1 ]; then
        _name=$1; shift 2
        "$@" || { echo "$_name failed" >&2; exit 1; }
        return 0
    fi
    [ -n "$JOBS_DIR" ] || JOBS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jobs.XXXXXX")
    _count=0
    for _job in $JOBS_RUNNING; do _count=$((_count + 1)); done
    [ "$_count" -lt "$JOBS_MAX" ] || _jobs_wait_any  # sets _name and _log: read the arguments after it
    _name=$1; _log=$2; shift 2
    JOBS_COUNT=$((JOBS_COUNT + 1))
    echo "$_name: started ($JOBS_THREADS thread(s) each, $JOBS_MAX at a time; log $_log)"
    # The inner subshell contains an `exit` of a shell function; the outer one records the status.
    (
        export OMP_NUM_THREADS="$JOBS_THREADS"
        if ("$@"); then _rc=0; else _rc=$?; fi
        echo "$_rc" >"$JOBS_DIR/$JOBS_COUNT"
    ) >"$_log" 2>&1 &
    JOBS_RUNNING="${JOBS_RUNNING:+$JOBS_RUNNING }$!|$JOBS_COUNT|$(date +%s)|$_name|$_log"
}

jobs_wait_all() {
    while [ -n "$JOBS_RUNNING" ]; do
        _jobs_wait_any
    done
}

jobs_stop() {
    for _job in $JOBS_RUNNING; do
        _jobs_kill_tree "${_job%%|*}"
    done
    JOBS_RUNNING=""
    [ -z "$JOBS_DIR" ] || rm -rf "$JOBS_DIR"
    JOBS_DIR=""
}

_jobs_kill_tree() {
    for _child in $(_jobs_children "$1"); do
        _jobs_kill_tree "$_child"
    done
    kill "$1" 2>/dev/null || true
}

# The child processes of $1: from /proc on Linux (no procps needed), else pgrep.
_jobs_children() {
    if [ -r /proc/self/stat ]; then
        for _stat in /proc/[0-9]*/stat; do
            read -r _p _comm _state _ppid _more <"$_stat" 2>/dev/null || continue
            [ "$_ppid" != "$1" ] || echo "$_p"
        done
    else
        pgrep -P "$1" 2>/dev/null || true
    fi
}

# Waits until one running job has ended (each writes its status file last), then reports it.
_jobs_wait_any() {
    while :; do
        for _job in $JOBS_RUNNING; do
            _rest=${_job#*|}
            [ -f "$JOBS_DIR/${_rest%%|*}" ] && { _jobs_finish "$_job"; return 0; }
        done
        sleep 1
    done
}

_jobs_finish() {
    _left=""
    for _other in $JOBS_RUNNING; do
        [ "$_other" = "$1" ] || _left="${_left:+$_left }$_other"
    done
    JOBS_RUNNING=$_left
    _pid=${1%%|*}; _rest=${1#*|}
    _id=${_rest%%|*}; _rest=${_rest#*|}
    _began=${_rest%%|*}; _rest=${_rest#*|}
    _name=${_rest%%|*}; _log=${_rest#*|}
    wait "$_pid" 2>/dev/null || true
    _status=$(cat "$JOBS_DIR/$_id")
    if [ "$_status" = 0 ]; then
        job_done "$_name" "$_log" "$(( $(date +%s) - _began ))"
    else
        cat "$_log" >&2
        echo "$_name failed (exit status $_status; log $_log)" >&2
        jobs_stop
        exit 1
    fi
}
