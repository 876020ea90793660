# bash completion for remux: source <(remux completion bash)
# It hands the words before the cursor (and the one at it) to `remux __complete --` (src/cli/completion.ts),
# which answers with lines of VALUE<TAB>DESCRIPTION, then :N, a set of bits (2: complete file names).
# Its stderr is dropped and its stdin is /dev/null: nothing reaches the prompt line.
_remux() {
  local -a words=() lines=()
  local i w glue='' cur tok prefix directive line
  # bash splits words at COMP_WORDBREAKS ('=' and ':' among them): --host=web1 and env=prod come as
  # three words each. They are put together again for remux, which reads words as the command does.
  for ((i = 1; i <= COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((${#words[@]} > 0)) && [[ -n $w && $w != *[!=:]* ]]; then
      words[-1]+=$w
      glue=1
    elif [[ -n $glue ]]; then
      words[-1]+=$w
      glue=''
    else
      words+=("$w")
    fi
  done
  ((${#words[@]} > 0)) || words=('')
  cur=${words[-1]}
  mapfile -t lines < <(remux __complete -- "${words[@]}" 2>/dev/null </dev/null)
  ((${#lines[@]} > 0)) || return 0
  directive=${lines[-1]#:}
  [[ $directive =~ ^[0-9]+$ ]] || return 0
  unset 'lines[-1]'
  # What readline replaces is bash's own last word: the part of cur after an '=' or ':' it split at.
  tok=${COMP_WORDS[COMP_CWORD]}
  [[ $tok == *[!=:]* ]] || tok=''
  prefix=${cur%"$tok"}
  COMPREPLY=()
  for line in "${lines[@]}"; do
    line=${line%%$'\t'*}
    COMPREPLY+=("${line#"$prefix"}")
  done
  if ((directive & 2)) && ((${#COMPREPLY[@]} == 0)); then compopt -o default 2>/dev/null; fi
  return 0
}
complete -F _remux remux
