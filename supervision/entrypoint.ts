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

/** A first word that names a program: plain characters, no quoting, no `=`. */
const PROGRAM_WORD = /^[A-Za-z0-9_@%+:,./-]+$/;

/**
 * Characters that end a simple command or start a construct outside quotes: lists, pipes,
 * background, redirections, subshells and groups, comments, escapes, command
 * substitution, and line breaks.
 */
const OUTSIDE_QUOTES_FORBIDDEN = /[;&|<>(){}#\\`\n\r]/;

/** Inside double quotes: escapes and command substitution (also `$(`, checked apart). */
const INSIDE_DOUBLE_QUOTES_FORBIDDEN = /[\\`]/;

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
  if (command.includes("$(")) return undefined;
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
