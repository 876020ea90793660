# fish completion for remux: remux completion fish > ~/.config/fish/completions/remux.fish
# It hands the words before the cursor (and the one at it) to `remux __complete --` (src/cli/completion.ts),
# which answers with lines of VALUE<TAB>DESCRIPTION, then :N, a set of bits (2: complete file names).
# Its stderr is dropped and its stdin is /dev/null: nothing reaches the prompt line.
function __remux_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l lines (remux __complete -- $words[2..-1] "$cur" 2>/dev/null </dev/null)
    set -l directive (string replace -r '^:' '' -- $lines[-1])
    string match -qr '^[0-9]+$' -- "$directive"; or return
    set -e lines[-1]
    if test (count $lines) -eq 0; and test (math "bitand($directive, 2)") -ne 0
        __fish_complete_path "$cur"
        return
    end
    printf '%s\n' $lines
end
complete -c remux -f -a '(__remux_complete)'
