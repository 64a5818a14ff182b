#!/bin/sh
# The supervisor of one actor. supervisor.ts writes this file into the run directory; the
# launcher (launcher.sh) runs it as `sh <run dir>/jobhead-supervisor <actor id>`, as the
# leader of a new session and process group, in the actor's environment, with fd 3 the
# launcher's pipe to the head.
#
# It joins the actor's cgroups first (the one stops go through, and those that hold it to
# its limits), before it forks anything, so every process of the actor starts inside them
# (the head writing the pid after the spawn would race with the forks).
#
# The command runs in a plain `sh -c` of its own ($$ is that shell's pid, as API.md says;
# as `exec <command>` when it is one program, so that the shell becomes that program
# rather than wait for it), with none of the supervisor's traps, in the background so
# that `jobs -l` can tell `exit 137` ("Done(137)") from a death by SIGKILL ("Killed");
# where the shell has forgotten the job once waited for (bash), the 128 + N rule is left.
# A background command starts with SIGINT and SIGQUIT ignored, which its shell could not
# undo: `env` resets them where it can.
#
# The watchdog is a subshell blocked reading a fifo whose only writer is the supervisor
# (fd 9, closed for the command). The supervisor writes one line once the exit file is
# complete; a read that ends without it means the supervisor died, which the watchdog
# notes in the exit file and tells the head on fd 3. Either way, once the supervisor is
# gone, it kills the whole group, which also cleans up stragglers after a normal exit.
# The supervisor's last act is to tell the head its status and the exit file's line on
# fd 3 (closed for the command): a pipe write, which tells the head the outcome without a
# read of the file, also when a full disk kept the file empty. The head that launched a
# supervisor learns its end from that pipe alone; another head reads the exit file.
# The supervisor traps TERM so that a stop (TERM to the group) still lets it record the
# command's status: `wait` returns early on a trapped signal (with a status above 128),
# and is called again until the command has ended; for a command already waited for,
# dash answers its status again.

# Its one argument is the actor id, so that ps shows which actor a supervisor runs. The
# rest comes in the environment, which the command does not inherit.
actor_id=$1
# Where the command's end is written: "exit N", "signal N", or "died" (by the watchdog).
exit_file=$JOBHEAD_SUPERVISOR_EXIT_FILE
# The watchdog's fifo (the head makes it where it can, with no process of its own).
fifo=$JOBHEAD_SUPERVISOR_FIFO
# The file the command's stdout and stderr are appended to.
log_file=$JOBHEAD_SUPERVISOR_LOG
# The command, run with `sh -c`.
command=$JOBHEAD_SUPERVISOR_COMMAND
# "1" when the command is one program, which its shell may exec (entrypoint.ts).
exec_command=$JOBHEAD_SUPERVISOR_EXEC
# The actor's cgroup directories, one a line, or "" for none.
cgroups=$JOBHEAD_SUPERVISOR_CGROUPS
# "1" when `env --default-signal` works here.
resets_signals=$JOBHEAD_SUPERVISOR_RESETS_SIGNALS
# The command's working directory, or "" for the launcher's.
dir=$JOBHEAD_SUPERVISOR_CWD
# The job's own LC_ALL where the launcher started this script in the C locale: "=VALUE", or
# "unset"; "keep" when LC_ALL is the job's already.
lc_all=${JOBHEAD_SUPERVISOR_LC_ALL-keep}
unset JOBHEAD_SUPERVISOR_EXIT_FILE JOBHEAD_SUPERVISOR_FIFO JOBHEAD_SUPERVISOR_LOG \
  JOBHEAD_SUPERVISOR_COMMAND JOBHEAD_SUPERVISOR_CGROUPS JOBHEAD_SUPERVISOR_RESETS_SIGNALS \
  JOBHEAD_SUPERVISOR_CWD JOBHEAD_SUPERVISOR_LC_ALL JOBHEAD_SUPERVISOR_EXEC

# Tells the head that the supervisor ends with status $1 (and the exit file's line $2, when
# the command ran), and ends. Once the head that launched it is gone, no one reads the
# pipe: the write fails, and that is ignored.
finish() {
  trap '' PIPE
  echo "ended $actor_id $$ $1${2:+ $2}" 2>/dev/null >&3
  exit "$1"
}

command exec >>"$log_file" 2>&1 </dev/null || finish 125
if [ -n "$dir" ] && ! cd "$dir"; then
  echo "jobhead: actor $actor_id cannot enter its working directory $dir"
  finish 125
fi
set -f
IFS='
'
for cgroup in $cgroups; do
  if ! echo $$ 2>/dev/null >"$cgroup/cgroup.procs"; then
    echo "jobhead: actor $actor_id cannot join the cgroup $cgroup"
    finish 125
  fi
done
unset IFS
set +f
if ! [ -p "$fifo" ] && ! mkfifo "$fifo"; then
  echo "jobhead: actor $actor_id cannot create the supervisor fifo $fifo"
  finish 125
fi
(
  trap '' TERM INT HUP PIPE
  exec 8<"$fifo"
  if ! read -r _ <&8 && ! [ -s "$exit_file" ]; then
    echo died 2>/dev/null >"$exit_file"
    echo "died $actor_id $$" 2>/dev/null >&3
  fi
  exec 3>&-
  read -r _ <&8
  kill -KILL 0
) &
exec 9>"$fifo"
# One process fewer: the command's shell becomes its program.
[ "$exec_command" = 1 ] && command="exec $command"
trap 'woke=1' TERM INT HUP
if [ "$resets_signals" = 1 ]; then
  # env, too, starts in the C locale, and gives the command the job's own LC_ALL.
  case $lc_all in
    keep) env --default-signal=INT,QUIT sh -c "$command" 9>&- 3>&- & ;;
    unset) env -u LC_ALL --default-signal=INT,QUIT sh -c "$command" 9>&- 3>&- & ;;
    *) env --default-signal=INT,QUIT "LC_ALL=${lc_all#=}" sh -c "$command" 9>&- 3>&- & ;;
  esac
else
  case $lc_all in
    keep) ;;
    unset) unset LC_ALL ;;
    *) export LC_ALL="${lc_all#=}" ;;
  esac
  sh -c "$command" 9>&- 3>&- &
fi
pid=$!
while woke=; wait "$pid"; status=$?; [ -n "$woke" ] && [ "$status" -gt 128 ]; do :; done
# Only a status above 128 may be a signal's: `jobs -l` says which (it cannot be read from a
# command substitution, a subshell without the job, so it goes through a file). The file is
# the exit file, overwritten with the end line below: the head takes what it holds until
# then for "not yet", and a stop of many jobs at once creates half as many files (creating
# a file in one directory is serialised, and costly on a busy file system). A file that
# cannot be written (a full disk, a removed run directory) is not the job's business: the
# report on fd 3 tells the head, and nothing is said in the job's log.
how=exited
if [ "$status" -gt 128 ]; then
  jobs -l 2>/dev/null >"$exit_file"
  how=
  while read -r line; do
    case $line in
      *" $pid Done"* | *" $pid Exit"*) how=exited ;;
      *" $pid "*) how=signalled ;;
    esac
  done 2>/dev/null <"$exit_file"
fi
if [ "$how" = signalled ] || { [ -z "$how" ] && [ "$status" -gt 128 ]; }; then
  end="signal $((status - 128))"
else
  end="exit $status"
fi
echo "$end" 2>/dev/null >"$exit_file"
echo >&9
finish "$status" "$end"
