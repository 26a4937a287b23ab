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
#                          background with its output in LOG, first waiting for the oldest job when
#                          N are running
#   jobs_wait_all          waits for every running job
#   jobs_stop              stops the running jobs (for an exit trap)
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
}

jobs_start() {
    if [ "$JOBS_MAX" -eq 1 ]; then
        _name=$1; shift 2
        "$@" || { echo "$_name failed" >&2; exit 1; }
        return 0
    fi
    _count=0
    for _job in $JOBS_RUNNING; do _count=$((_count + 1)); done
    [ "$_count" -lt "$JOBS_MAX" ] || _jobs_wait_oldest  # sets _name and _log: read the arguments after it
    _name=$1; _log=$2; shift 2
    echo "$_name: started ($JOBS_THREADS thread(s) each, $JOBS_MAX at a time; log $_log)"
    (export OMP_NUM_THREADS="$JOBS_THREADS"; "$@") >"$_log" 2>&1 &
    JOBS_RUNNING="${JOBS_RUNNING:+$JOBS_RUNNING }$!|$(date +%s)|$_name|$_log"
}

jobs_wait_all() {
    while [ -n "$JOBS_RUNNING" ]; do
        _jobs_wait_oldest
    done
}

jobs_stop() {
    for _job in $JOBS_RUNNING; do
        # The job is a subshell: stop the command it runs, then the subshell.
        pkill -TERM -P "${_job%%|*}" 2>/dev/null || true
        kill "${_job%%|*}" 2>/dev/null || true
    done
    JOBS_RUNNING=""
}

_jobs_wait_oldest() {
    _job=${JOBS_RUNNING%% *}
    case $JOBS_RUNNING in
        *" "*) JOBS_RUNNING=${JOBS_RUNNING#* } ;;
        *) JOBS_RUNNING="" ;;
    esac
    _pid=${_job%%|*}; _rest=${_job#*|}
    _began=${_rest%%|*}; _rest=${_rest#*|}
    _name=${_rest%%|*}; _log=${_rest#*|}
    if wait "$_pid"; then
        job_done "$_name" "$_log" "$(( $(date +%s) - _began ))"
    else
        _status=$?
        cat "$_log" >&2
        echo "$_name failed (exit status $_status; log $_log)" >&2
        jobs_stop
        exit 1
    fi
}
