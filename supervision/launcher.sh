#!/bin/sh
# The launcher: one long-lived shell per head that starts supervisors on request, so that
# the head only writes a line and never forks on its own event loop. launcher.ts writes
# this file into the run directory and runs it as `setsid sh <run dir>/jobhead-launcher
# <setsid> <sh> <env> <supervisor script>`, in a session of its own, with the environment
# every actor starts from (the head's, less what it withholds). It ends when the head
# closes its stdin, or dies; supervisors it started keep running.
#
# Its stdin is read as shell commands, one a line (sourced, so that the shell reads them in
# blocks: its `read` builtin takes one byte per system call), each in braces, so that a
# request cut short by a head that died while writing it is a syntax error, never run:
# either "{ jobhead_reap <pid>; }" (reap that supervisor, which has ended or is about to:
# it said so, as its last act, or it is a zombie; answered "reaped") or "{ jobhead_launch
# …; }" with its arguments, each a single-quoted word in which a newline is written
# '"$jobhead_nl"':
#   { jobhead_launch '<actor id>' 'export' | 'env' 'NAME=VALUE'...; }
# "export" when every NAME is a shell variable name and none is jobhead_* (the shell exports
# them itself), "env" otherwise (the env program sets them: one more exec).
#
# It answers "started <actor id> <pid>" on stdout for every supervisor once forked. Each
# supervisor gets the same pipe as fd 3, on which it says "ended <actor id> <pid> <status>
# [<exit file line>]" as the last thing it does (its watchdog says "died <actor id> <pid>"
# for a supervisor that could not). Its variables are prefixed, not to change the value of a
# variable of the same name that an actor inherits.
jobhead_setsid=$1
jobhead_sh=$2
jobhead_env=$3
jobhead_script=$4
# shellcheck disable=SC2034 # used by the requests, which are sourced
jobhead_nl='
'

jobhead_launch() {
  (
    jobhead_id=$1
    jobhead_mode=$2
    shift 2
    if [ "$jobhead_mode" = export ]; then
      # shellcheck disable=SC2163 # each is NAME=VALUE
      for jobhead_pair; do export "$jobhead_pair"; done
      # setsid runs in the C locale, which it loads no files for (C.UTF-8 without a locale
      # archive takes some 50 system calls); the supervisor gives the job its own LC_ALL.
      JOBHEAD_SUPERVISOR_LC_ALL=${LC_ALL+=$LC_ALL}
      export JOBHEAD_SUPERVISOR_LC_ALL="${JOBHEAD_SUPERVISOR_LC_ALL:-unset}" LC_ALL=C
      exec "$jobhead_setsid" "$jobhead_sh" "$jobhead_script" "$jobhead_id" 3>&1 </dev/null
    fi
    exec "$jobhead_env" -- "$@" "$jobhead_setsid" "$jobhead_sh" "$jobhead_script" \
      "$jobhead_id" 3>&1 </dev/null
  ) &
  echo "started $1 $!"
}

jobhead_reap() {
  wait "$1"
  echo reaped
}

# bash reads a whole sourced file before it runs any of it: it takes a line at a time.
if [ -n "${BASH_VERSION-}" ]; then
  while IFS= read -r jobhead_line; do eval "$jobhead_line"; done
else
  # shellcheck disable=SC1091 # the head's requests (stdin: /proc, not /dev, is sure to be there)
  . /proc/self/fd/0
fi
