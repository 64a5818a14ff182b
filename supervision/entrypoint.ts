/**
 * Whether a command may run as `sh -c 'exec <command>'`: then the shell becomes the
 * command's program instead of forking it and waiting, which saves a process (and a fork)
 * for each job whose entrypoint is one program, such as `python train.py --epochs 3`.
 * Debian's dash does not do this by itself for the last command of `sh -c`.
 *
 * Prefixing `exec` changes nothing else only for a single simple command whose first
 * word is a program: not a builtin or keyword (`exec exit 3` would look for a program
 * `exit`), not an assignment (`exec A=1 cmd` runs a program named `A=1`), and with no
 * second command, pipe, list, redirection or subshell. The check is deliberately narrow:
 * what it cannot read for sure runs as before.
 *
 * What does change is inherent to `exec`, and is what bash does by itself for such a
 * command: the program is the entrypoint, so a program killed by signal N ends with -N
 * (its shell's exit code 128 + N before), a stop's SIGTERM reaches the program alone
 * (before, the shell died of it at once and the group was killed, the program's own
 * handler cut short), `$$` is the program's pid, and a missing program reads
 * `exec: X: not found`.
 */

/**
 * Builtins and reserved words of dash and bash (the two shells `sh` is on Linux); a
 * first word among them is not a program that `exec` would find.
 */
const SHELL_WORDS = new Set([
  ...["!", ".", ":", "[", "[[", "]]", "{", "}", "alias", "bg", "bind", "break", "builtin"],
  ...["caller", "case", "cd", "chdir", "command", "compgen", "complete", "compopt"],
  ...["continue", "coproc", "declare", "dirs", "disown", "do", "done", "echo", "elif"],
  ...["else", "enable", "esac", "eval", "exec", "exit", "export", "false", "fc", "fg", "fi"],
  ...["for", "function", "getopts", "hash", "help", "history", "if", "in", "jobs", "kill"],
  ...["let", "local", "logout", "mapfile", "popd", "printf", "pushd", "pwd", "read"],
  ...["readarray", "readonly", "return", "select", "set", "shift", "shopt", "source"],
  ...["suspend", "test", "then", "time", "times", "trap", "true", "type", "typeset"],
  ...["ulimit", "umask", "unalias", "unset", "until", "wait", "while"],
]);

/**
 * A first word that names a program: plain characters, no quoting, no `=`; not starting
 * with `-` (which `sh -c` reads as its own option) or `%` (a job in bash).
 */
const PROGRAM_WORD = /^[A-Za-z0-9_@+:,./][A-Za-z0-9_@%+:,./-]*$/;

/**
 * Characters that end a simple command or start a construct outside quotes: lists, pipes,
 * background, redirections, subshells and groups, comments, escapes, command
 * substitution, and line breaks.
 */
const OUTSIDE_QUOTES_FORBIDDEN = /[;&|<>(){}#\\`\n\r]/;

/**
 * Inside double quotes: escapes, command substitution and `${…}` (whose own quotes nest
 * inside the double quotes, and could hide a `;`).
 */
const INSIDE_DOUBLE_QUOTES_FORBIDDEN = /[\\`]|\$\{/;

/** Anywhere: command substitution, `$'…'` and `$"…"` quoting. */
const ANYWHERE_FORBIDDEN = /\$[('"]/;

/**
 * Whether `command` is one simple command running one program, so that the shell may
 * `exec` it with the same outcome. Pure: see the module's comment for the rules.
 */
export function runsAsOneProgram(command: string): boolean {
  const words = splitWords(command);
  if (words === undefined || words.length === 0) return false;
  const first = words[0];
  return PROGRAM_WORD.test(first) && !first.includes("=") && !SHELL_WORDS.has(first);
}

/**
 * The words of `command` as written (quotes kept), or undefined when it has anything
 * beyond words: an operator, an unclosed quote, or a construct that is not plain text.
 */
function splitWords(command: string): string[] | undefined {
  if (ANYWHERE_FORBIDDEN.test(command)) return undefined;
  const words: string[] = [];
  let word = "";
  let i = 0;
  while (i < command.length) {
    const c = command[i];
    if (c === " " || c === "\t") {
      if (word !== "") words.push(word);
      word = "";
      i++;
    } else if (c === "'" || c === '"') {
      const close = command.indexOf(c, i + 1);
      if (close < 0) return undefined;
      const quoted = command.slice(i + 1, close);
      if (c === '"' && INSIDE_DOUBLE_QUOTES_FORBIDDEN.test(quoted)) return undefined;
      word += command.slice(i, close + 1);
      i = close + 1;
    } else {
      if (OUTSIDE_QUOTES_FORBIDDEN.test(c)) return undefined;
      word += c;
      i++;
    }
  }
  if (word !== "") words.push(word);
  return words;
}

/**
 * Whether the shell at `realPath` (`sh` with its links resolved) is one to prefix `exec`
 * for: dash, which forks even a lone command. bash execs a lone simple command by itself,
 * and the rules above were not checked against other shells (busybox, mksh), whose
 * commands run as written.
 */
export function shellWantsExec(realPath: string): boolean {
  return realPath.slice(realPath.lastIndexOf("/") + 1) === "dash";
}
