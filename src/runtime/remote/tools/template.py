# Template: rmote's template language (${expr}, % control lines closed by % end*, ## comments, %% for a
# literal %, \${ escape), rendered here with the host's facts. Sent after FileSystem's source (its
# atomic, no-follow writeText writes Template.file) and the expression subset (../template/expr.py,
# filters.py): see template.ts.
import os, platform, re, socket
from collections import ChainMap

# The line grammar: text lines with ${…}, % control lines, ## comments, %% literal lines.
# No two runs of spaces may follow each other in _FOR: `\s*,?\s*\)?\s+` backtracked in cubic time,
# and '% for a' + 20,000 spaces held the host for most of an hour before any step was counted.
_FOR = re.compile(r'^for\s+(?:\(\s*)?([A-Za-z]\w*(?:\s*,\s*[A-Za-z]\w*)*)(?:\s*,)?(?:\s*\))?\s+in\s+(.+)$', re.S)
_ENDS = {'endfor': 'for', 'endif': 'if', 'end': None}


def _compile(text, name):
    # The template as a tree: ('text', line, parts) / ('if', line, [(cond, body)…], else) / ('for', …).
    cx = _Ctx(name)
    root = []
    stack = [('root', 0, root, None)]
    lines = text.split('\n')
    final_nl = len(lines) > 1 and lines[-1] == ''
    if final_nl:
        lines.pop()
    for cx.line, raw in enumerate(lines, 1):
        cx.step(1 + len(raw) // CHARS_PER_STEP)
        body = stack[-1][2]
        s = raw.strip()
        if s.startswith('##'):
            continue
        if s.startswith('%%'):
            i = raw.index('%%')
            body.append(('text', cx.line, _split(cx, raw[:i] + '%' + raw[i + 2:])))
            continue
        if not s.startswith('%'):
            body.append(('text', cx.line, _split(cx, raw)))
            continue
        code = s[1:].strip()
        word = code.split()[0].rstrip(':(') if code else 'end'
        rest = code[len(word):].strip() if code else ''
        if rest.endswith(':'):
            rest = rest[:-1].rstrip()
        kind, opened, _, node = stack[-1]
        if word in _ENDS:
            if rest:
                cx.fail('%% %s takes nothing after it, got %r' % (word, rest))
            if kind == 'root':
                cx.fail('%% %s closes no open block' % word)
            if _ENDS[word] not in (None, kind):
                cx.fail('%% %s cannot close the %% %s opened at line %d' % (word, kind, opened))
            stack.pop()
        elif word in ('elif', 'else'):
            if kind != 'if':
                cx.fail('%% %s outside an %% if block' % word)
            if node[3] is not None:
                cx.fail('%% %s after the %% else of the %% if opened at line %d' % (word, opened))
            if word == 'elif':
                node[2].append((_cond(cx, rest, word), []))
                stack[-1] = ('if', opened, node[2][-1][1], node)
            else:
                if rest:
                    cx.fail('%% else takes nothing after it, got %r' % rest)
                node[3] = []
                stack[-1] = ('if', opened, node[3], node)
        elif word == 'if':
            node = ['if', cx.line, [(_cond(cx, rest, word), [])], None]
            body.append(node)
            stack.append(('if', cx.line, node[2][0][1], node))
        elif word == 'for':
            m = _FOR.match(code.rstrip(':').rstrip())
            if not m:
                cx.fail('%% %s: expected %% for NAME[, NAME…] in EXPRESSION' % code)
            names = [n.strip() for n in m.group(1).split(',')]
            for n in names:
                if n in ('in', 'not', 'and', 'or', 'if', 'else', 'True', 'False', 'None'):
                    cx.fail('%% for: %s cannot be a loop variable' % n)
            node = ('for', cx.line, names, _parse(cx, m.group(2)), [])
            body.append(node)
            stack.append(('for', cx.line, node[4], node))
        else:
            cx.fail('%% %s: not a control line of the template language (%% if/elif/else/endif, %% for/endfor, %% end; %%%% for a literal %%)' % code)
        if len(stack) > MAX_DEPTH:
            cx.fail('blocks are nested more than %d deep' % MAX_DEPTH)
    if len(stack) > 1:
        kind, opened = stack[-1][:2]
        cx.fail('the %% %s opened at line %d is never closed (%% end%s)' % (kind, opened, kind), opened)
    return root, final_nl


def _cond(cx, src, word):
    if not src:
        cx.fail('%% %s needs a condition' % word)
    return _parse(cx, src)


def _split(cx, line):
    # A text line's parts: literal strings and parsed ${…} expressions (brace-matched, strings skipped).
    parts, buf, i, n = [], [], 0, len(line)
    while i < n:
        if line.startswith('\\${', i):
            buf.append('${')
            i += 3
        elif line.startswith('${', i):
            j, depth, quote = i + 2, 1, None
            while j < n:
                c = line[j]
                if quote:
                    if c == '\\':
                        j += 1
                    elif c == quote:
                        quote = None
                elif c in '\'"':
                    quote = c
                elif c == '{':
                    depth += 1
                elif c == '}':
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                cx.fail('${ at column %d is never closed with }' % (i + 1))
            if buf:
                parts.append(''.join(buf))
                buf = []
            src = line[i + 2:j]
            parts.append((_parse(cx, src), src))
            i = j + 1
        else:
            buf.append(line[i])
            i += 1
    if buf:
        parts.append(''.join(buf))
    return parts


class _Out:
    def __init__(s, cx):
        s.cx, s.parts, s.size, s.pending = cx, [], 0, False

    def add(s, text):
        s.size += len(text)
        if s.size > MAX_OUT:
            s.cx.fail('the output is more than the %d characters a template may produce' % MAX_OUT)
        s.parts.append(text)


def _run(cx, body, scope, out):
    for node in body:
        cx.line = node[1]
        cx.step()
        if node[0] == 'text':
            # rmote's newline rule: a text line starts with the newline the one before it left pending.
            if out.pending:
                out.add('\n')
            for p in node[2]:
                out.add(p if isinstance(p, str) else _text(cx, _ev(cx, p[0], scope)))
            out.pending = True
        elif node[0] == 'if':
            for cond, branch in node[2]:
                cx.line = node[1]
                if _ev(cx, cond, scope):
                    _run(cx, branch, scope, out)
                    break
            else:
                if node[3]:
                    _run(cx, node[3], scope, out)
        else:
            _, line, names, it, loop = node
            items = _ev(cx, it, scope)
            if not isinstance(items, (list, tuple, dict, str)):
                cx.fail('%% for needs a list, dict or string to loop over, got %s' % type(items).__name__)
            # Iterated as it is, never copied: a loop over a 2 MB string in each of 60 nested loops held
            # 60 lists of 2 million items (a template cannot change what it loops over).
            for item in items:
                cx.line = line
                # Each pass is a step, however little its body holds: a loop of empty loops is work too.
                cx.step()
                if len(names) == 1:
                    bound = {names[0]: item}
                elif isinstance(item, (list, tuple)) and len(item) == len(names):
                    bound = dict(zip(names, item))
                else:
                    cx.fail('%% for %s: cannot unpack %s into %d names' % (', '.join(names), _brief(item), len(names)))
                _run(cx, loop, ChainMap(bound, scope), out)


def _facts(host):
    # The `host` variable: the inventory's name and labels (sent by the local side) and what this host says.
    u = os.uname()
    f = {'name': None, 'labels': {}}
    f.update(host or {})
    f.update({'hostname': socket.gethostname(), 'os': u.sysname, 'arch': u.machine, 'python': platform.python_version()})
    return f


def render(text, variables=None, name='<template>', host=None):
    variables = dict(variables or {})
    if 'host' in variables:
        raise TemplateError("%s: the variable host is reserved: it holds the host's facts (host.name, host.labels, …)" % name)
    variables['host'] = _facts(host)
    root, final_nl = _compile(text, name)
    cx = _Ctx(name)
    out = _Out(cx)
    try:
        _run(cx, root, variables, out)
    except _Undefined as e:
        raise TemplateError(str(e)) from None
    # Unlike rmote, a template's final newline is kept: a rendered config file ends like its template.
    if final_nl and out.pending:
        out.add('\n')
    return ''.join(out.parts)


def file(path, text, variables=None, name='<template>', host=None, mode=None, owner=None, group=None):
    # Renders, then writes with FileSystem's writeText (atomic, no symlink followed, unchanged: no write), with its diff.
    return writeText(path, render(text, variables, name, host), mode, owner, group, True)
