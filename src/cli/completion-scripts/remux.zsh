#compdef remux
# zsh completion for remux: put it in a directory of $fpath as _remux, or source <(remux completion zsh) after compinit
# It hands the words before the cursor (and the one at it) to `remux __complete --` (src/cli/completion.ts),
# which answers with lines of VALUE<TAB>DESCRIPTION, then :N, a set of bits (2: complete file names).
# Its stderr is dropped and its stdin is /dev/null: nothing reaches the prompt line.
compdef _remux remux

_remux() {
  local -a lines described
  local line value directive
  lines=("${(@f)$(remux __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null </dev/null)}")
  directive=${lines[-1]#:}
  [[ $directive == <-> ]] || return 1
  lines=("${(@)lines[1,-2]}")
  for line in "${lines[@]}"; do
    [[ -n $line ]] || continue
    value=${line%%$'\t'*}
    value=${value//:/\\:}
    if [[ $line == *$'\t'* ]]; then described+=("$value:${line#*$'\t'}"); else described+=("$value"); fi
  done
  if (( directive & 2 )) && (( ${#described} == 0 )); then
    _files
  else
    _describe -t values remux described
  fi
}

if [[ $funcstack[1] == _remux ]]; then
  _remux "$@"
fi
