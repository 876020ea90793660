# Template: rmote's template language (${expr}, % control lines closed by % end*, ## comments, %% for a
# literal %, \${ escape), rendered here with the host's facts. Expressions are a SAFE SUBSET, never
# code: each is parsed with ast.parse(mode='eval') and only the node types below are accepted, then a
# tree-walking evaluator of our own computes it over plain JSON data (str, int, float, bool, None, list,
# tuple, dict). Nothing of the template is ever eval'd, exec'd or compiled to code. Calls are limited to
# the filters in FILTERS and the methods in METHODS; names and attributes starting with _ are refused.
# Sizes (MAX_OUT, MAX_ITEMS), all a render builds (MAX_BUILT), evaluation steps (MAX_STEPS) and nesting
# (MAX_DEPTH) are capped, and a cancelled call stops. Sent after FileSystem's source (template.ts), so
# Template.file writes with its atomic, no-follow writeText.
import ast, difflib, json as jsonlib, os, platform, re, socket, sys
from collections import ChainMap

MAX_OUT = 2 << 20
MAX_ITEMS = 100000
MAX_BUILT = 32 << 20
MAX_STEPS = 1000000
MAX_DEPTH = 64
MAX_EXPR = 10000
MAX_DIFF = 256 << 10


class TemplateError(ValueError):
    pass


class _Undefined(TemplateError):
    pass


# Where an error is reported: the template's name and the line being rendered.
class _Ctx:
    def __init__(s, name):
        s.name = name
        s.line = 0
        s.steps = 0
        s.built = 0
        s.call = rt.call() if 'rt' in globals() else None

    def fail(s, msg, line=None, cls=TemplateError):
        raise cls('%s:%d: %s' % (s.name, s.line if line is None else line, msg))

    def step(s):
        s.steps += 1
        if s.steps > MAX_STEPS:
            s.fail('the template takes more than %d evaluation steps; it was stopped' % MAX_STEPS)
        if s.steps & 4095 == 0 and s.call is not None and s.call.ev.is_set():
            raise TemplateError('cancelled')

    def made(s, v):
        # Everything built counts, freed or not: many big values at once cannot exhaust the host's memory.
        if isinstance(v, (str, list, tuple, dict)):
            s.built += len(v)
            if s.built > MAX_BUILT:
                s.fail('the template builds more than %d characters and items in all; it was stopped' % MAX_BUILT)
        return v


# Parsing -------------------------------------------------------------------------------------------

_NAMES = {
    ast.Lambda: 'lambda', ast.ListComp: 'a comprehension', ast.SetComp: 'a comprehension',
    ast.DictComp: 'a comprehension', ast.GeneratorExp: 'a generator expression', ast.JoinedStr: 'an f-string',
    getattr(ast, 'NamedExpr', None): 'the walrus operator :=', ast.Await: 'await', ast.Yield: 'yield', ast.YieldFrom: 'yield',
    ast.Starred: '* unpacking', ast.Set: 'a set', ast.Pow: 'the ** operator', ast.BitAnd: 'the & operator',
    ast.BitOr: 'the | operator', ast.BitXor: 'the ^ operator', ast.LShift: 'the << operator',
    ast.RShift: 'the >> operator', ast.Invert: 'the ~ operator', ast.MatMult: 'the @ operator',
}
_OK = (ast.Expression, ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.List, ast.Tuple,
       ast.Dict, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.IfExp, ast.Call, ast.Load,
       ast.And, ast.Or, ast.Not, ast.UAdd, ast.USub, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv,
       ast.Mod, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)
if sys.version_info < (3, 9):
    _OK += (ast.Index,)
# Before 3.8 literals parse as Num, Str, NameConstant (Bytes and Ellipsis stay refused).
_OLD = (ast.Num, ast.Str, ast.NameConstant) if sys.version_info < (3, 8) else ()
_OK += _OLD


def _literal(n):
    # 3.8+: Constant.value; before: Num.n, Str.s, NameConstant.value.
    for field in ('value', 'n', 's'):
        if field in n._fields:
            return getattr(n, field)


def _parse(cx, src):
    # The expression's validated tree, or a TemplateError naming the line and what is not allowed.
    if len(src) > MAX_EXPR:
        cx.fail('an expression of %d characters is longer than the %d allowed' % (len(src), MAX_EXPR))
    if not src.strip():
        cx.fail('empty expression ${}')
    try:
        tree = ast.parse(src.strip(), '<template>', 'eval')
    except SyntaxError as e:
        cx.fail('${%s}: invalid expression: %s' % (src, e.msg))
    except (RecursionError, MemoryError, ValueError):
        cx.fail('${%s}: the expression is nested too deeply' % src[:80])
    todo, problems = [(tree, 0)], []
    while todo:
        node, depth = todo.pop()
        if depth > MAX_DEPTH:
            cx.fail('${%s}: the expression is nested more than %d deep' % (src[:80], MAX_DEPTH))
        what = _refused(node)
        if what:
            problems.append(what)
        todo.extend((c, depth + 1) for c in ast.iter_child_nodes(node))
    if problems:
        # A private name or attribute is the telling reason, wherever it is.
        what = min(problems, key=lambda p: 'private' not in p[1])
        cx.fail('${%s}: %s is not allowed in a template expression%s' % ((src,) + what))
    return tree.body


def _refused(node):
    # What is wrong with this one node and a hint, or None.
    if not isinstance(node, _OK):
        return _NAMES.get(type(node)) or type(node).__name__, ''
    if isinstance(node, (ast.Constant,) + _OLD) and not (_literal(node) is None or isinstance(_literal(node), (str, int, float, bool))):
        return 'a literal of type %s' % type(_literal(node)).__name__, ''
    if isinstance(node, ast.Name) and node.id.startswith('_'):
        return 'the name %s' % node.id, ' (names starting with _ are private)'
    if isinstance(node, ast.Attribute) and node.attr.startswith('_'):
        return 'the attribute %s' % node.attr, ' (attributes starting with _ are private)'
    if isinstance(node, ast.Dict) and None in node.keys:
        return '** unpacking', ''
    if isinstance(node, ast.Call):
        f = node.func
        if node.keywords:
            return 'a keyword argument', ''
        if isinstance(f, ast.Name) and f.id not in FILTERS:
            return 'calling %s' % f.id, '; only the filters %s can be called' % ', '.join(sorted(FILTERS))
        if isinstance(f, ast.Attribute) and f.attr not in _METHOD_NAMES:
            return 'calling the method .%s' % f.attr, '; only the methods %s can be called' % ', '.join(sorted(_METHOD_NAMES))
        if not isinstance(f, (ast.Name, ast.Attribute)):
            return 'calling the result of an expression', ''
    return None


_FOR = re.compile(r'^for\s+\(?\s*([A-Za-z]\w*(?:\s*,\s*[A-Za-z]\w*)*)\s*,?\s*\)?\s+in\s+(.+)$', re.S)
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


# Evaluation ----------------------------------------------------------------------------------------

def _size(cx, v):
    # An upper bound of len(str(v)), stopping once it passes MAX_OUT.
    total, todo = 0, [v]
    while todo and total <= MAX_OUT:
        x = todo.pop()
        cx.step()
        if isinstance(x, str):
            total += len(x) + 2
        elif isinstance(x, dict):
            total += 2 + 4 * len(x)
            todo.extend(x.keys())
            todo.extend(x.values())
        elif isinstance(x, (list, tuple)):
            total += 2 + 2 * len(x)
            todo.extend(x)
        else:
            total += 24 if not isinstance(x, int) else x.bit_length() // 3 + 2
    return total


def _fits(cx, n, what):
    if n > MAX_OUT:
        cx.fail('%s would be %d characters, more than the %d a template may produce' % (what, n, MAX_OUT))


def _text(cx, v):
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple, dict)):
        _fits(cx, _size(cx, v), 'the text of a %s' % type(v).__name__)
    try:
        return str(v)
    except ValueError as e:
        cx.fail(str(e))


def _f_join(cx, items, sep=''):
    items = _seq(cx, items, 'join')
    if not all(isinstance(x, str) for x in items) or not isinstance(sep, str):
        cx.fail('join needs strings (use str() on each)')
    _fits(cx, sum(len(x) for x in items) + len(sep) * len(items), 'join')
    return sep.join(items)


def _f_replace(cx, s, old, new, count=-1):
    if not all(isinstance(x, str) for x in (s, old, new)) or not isinstance(count, int):
        cx.fail('replace needs three strings')
    k = s.count(old) if count < 0 else min(count, s.count(old))
    _fits(cx, len(s) + k * (len(new) - len(old)), 'replace')
    return s.replace(old, new, count)


def _f_indent(cx, s, width=4, first=False):
    if not isinstance(s, str) or not isinstance(width, int) or not 0 <= width <= 64:
        cx.fail('indent needs a string and a width from 0 to 64')
    _fits(cx, len(s) + width * (s.count('\n') + 1), 'indent')
    pad = ' ' * width
    lines = s.split('\n')
    return '\n'.join(l if (i == 0 and not first) or not l else pad + l for i, l in enumerate(lines))


def _f_json(cx, v):
    _fits(cx, _size(cx, v) * 6, 'json')
    return jsonlib.dumps(v, sort_keys=True, ensure_ascii=False)


def _f_int(cx, v):
    if isinstance(v, str) and len(v) > 100:
        cx.fail('int of a string longer than 100 characters')
    try:
        return int(v)
    except (TypeError, ValueError) as e:
        cx.fail('int(%r): %s' % (v, e))


def _f_float(cx, v):
    try:
        return float(v)
    except (TypeError, ValueError) as e:
        cx.fail('float(%r): %s' % (v, e))


def _f_sorted(cx, items):
    try:
        return sorted(_seq(cx, items, 'sorted'))
    except TypeError as e:
        cx.fail('sorted: %s' % e)


def _f_len(cx, v):
    if not isinstance(v, (str, list, tuple, dict)):
        cx.fail('len of a value of type %s' % type(v).__name__)
    return len(v)


def _seq(cx, v, what):
    if isinstance(v, dict):
        return list(v)
    if not isinstance(v, (list, tuple, str)):
        cx.fail('%s needs a list, got %s' % (what, type(v).__name__))
    return list(v)


def _on(kind, name, f):
    # A method or function of a `kind` value, called with the render's context first like the rest.
    return lambda cx, v, *a: f(v, *a) if isinstance(v, kind) else cx.fail('%s needs a %s, got %s' % (name, getattr(kind, '__name__', 'list'), type(v).__name__))


# The filters a template may call, and (below) the methods of plain data it may call: the whole
# vocabulary of calls. `default` is evaluated specially: an undefined value or None gives the fallback.
FILTERS = {
    'upper': _on(str, 'upper', str.upper), 'lower': _on(str, 'lower', str.lower), 'trim': _on(str, 'trim', str.strip), 'replace': _f_replace,
    'join': _f_join, 'len': _f_len, 'length': _f_len, 'sorted': _f_sorted, 'default': None,
    'int': _f_int, 'float': _f_float, 'str': lambda cx, v: _text(cx, v), 'indent': _f_indent, 'json': _f_json,
}
METHODS = {
    (str, 'join'): lambda cx, s, items: _f_join(cx, items, s), (str, 'replace'): _f_replace,
    (dict, 'keys'): _on(dict, 'keys', lambda d: list(d.keys())), (dict, 'values'): _on(dict, 'values', lambda d: list(d.values())),
    (dict, 'items'): _on(dict, 'items', lambda d: [tuple(kv) for kv in d.items()]), (dict, 'get'): _on(dict, 'get', dict.get),
    (list, 'count'): _on((list, tuple), 'count', lambda l, x: l.count(x)), (list, 'index'): _on((list, tuple), 'index', lambda l, x: l.index(x)),
}
for _m in ('upper', 'lower', 'strip', 'lstrip', 'rstrip', 'split', 'startswith', 'endswith'):
    METHODS[(str, _m)] = _on(str, _m, getattr(str, _m))
_METHOD_NAMES = {m for _, m in METHODS}


def _ev(cx, n, scope):
    cx.step()
    t = type(n)
    if t is ast.Constant or t in _OLD:
        return _literal(n)
    if t is ast.Name:
        try:
            return scope[n.id]
        except KeyError:
            cx.fail('undefined variable %s' % n.id, cls=_Undefined)
    if t is ast.Attribute:
        v = _ev(cx, n.value, scope)
        if isinstance(v, dict) and n.attr in v:
            return v[n.attr]
        if isinstance(v, dict):
            cx.fail('%s has no key %s' % (_src(n.value), n.attr), cls=_Undefined)
        cx.fail('a value of type %s has no attribute %s' % (type(v).__name__, n.attr))
    if t is ast.Subscript:
        v = _ev(cx, n.value, scope)
        k = n.slice.value if sys.version_info < (3, 9) and isinstance(n.slice, ast.Index) else n.slice
        if type(k) is ast.Slice:
            k = slice(*(None if x is None else _ev(cx, x, scope) for x in (k.lower, k.upper, k.step)))
        else:
            k = _ev(cx, k, scope)
        if not isinstance(v, (str, list, tuple, dict)):
            cx.fail('a value of type %s cannot be indexed' % type(v).__name__)
        try:
            return v[k]
        except KeyError:
            cx.fail('%s has no key %r' % (_src(n.value), k), cls=_Undefined)
        except (IndexError, TypeError, ValueError) as e:
            cx.fail('%s[%r]: %s' % (_src(n.value), k, e))
    if t is ast.List or t is ast.Tuple:
        items = [_ev(cx, x, scope) for x in n.elts]
        return items if t is ast.List else tuple(items)
    if t is ast.Dict:
        try:
            return {_ev(cx, k, scope): _ev(cx, v, scope) for k, v in zip(n.keys, n.values)}
        except TypeError as e:
            cx.fail('dict: %s' % e)
    if t is ast.BoolOp:
        v = None
        for x in n.values:
            v = _ev(cx, x, scope)
            if bool(v) == (type(n.op) is ast.Or):
                return v
        return v
    if t is ast.UnaryOp:
        v = _ev(cx, n.operand, scope)
        if type(n.op) is ast.Not:
            return not v
        if not isinstance(v, (int, float)):
            cx.fail('unary minus or plus of a value of type %s' % type(v).__name__)
        return -v if type(n.op) is ast.USub else +v
    if t is ast.IfExp:
        return _ev(cx, n.body if _ev(cx, n.test, scope) else n.orelse, scope)
    if t is ast.Compare:
        left = _ev(cx, n.left, scope)
        for op, rnode in zip(n.ops, n.comparators):
            right = _ev(cx, rnode, scope)
            if not _compare(cx, type(op), left, right):
                return False
            left = right
        return True
    if t is ast.BinOp:
        return cx.made(_binop(cx, type(n.op), _ev(cx, n.left, scope), _ev(cx, n.right, scope)))
    if t is ast.Call:
        return _call(cx, n, scope)
    cx.fail('%s is not allowed in a template expression' % t.__name__)


def _src(n):
    try:
        return ast.unparse(n)
    except AttributeError:
        return 'the value'


def _compare(cx, op, a, b):
    try:
        if op is ast.Eq:
            return a == b
        if op is ast.NotEq:
            return a != b
        if op is ast.Lt:
            return a < b
        if op is ast.LtE:
            return a <= b
        if op is ast.Gt:
            return a > b
        if op is ast.GtE:
            return a >= b
        if op is ast.In or op is ast.NotIn:
            if not isinstance(b, (str, list, tuple, dict)):
                cx.fail('in needs a string, list or dict on its right, got %s' % type(b).__name__)
            return (a in b) == (op is ast.In)
        if op is ast.Is:
            return a is b
        return a is not b
    except TypeError as e:
        cx.fail('cannot compare: %s' % e)


def _binop(cx, op, a, b):
    seq = (str, list, tuple)
    if op is ast.Mult and (isinstance(a, seq) or isinstance(b, seq)):
        s, k = (a, b) if isinstance(a, seq) else (b, a)
        if not isinstance(k, int):
            cx.fail('a %s can only be repeated by a whole number' % type(s).__name__)
        # A list counts by its items and by its text: [[1] * 1000] * 1000 is a million values.
        if len(s) * max(k, 0) > (MAX_OUT if isinstance(s, str) else MAX_ITEMS) or (not isinstance(s, str) and _size(cx, s) * k > MAX_OUT):
            cx.fail('repeating a %s of length %d %d times makes more than a template may hold' % (type(s).__name__, len(s), k))
    elif op is ast.Add and isinstance(a, seq) and isinstance(b, seq):
        if (len(a) + len(b) > MAX_OUT) if isinstance(a, str) else (len(a) + len(b) > MAX_ITEMS or _size(cx, a) + _size(cx, b) > MAX_OUT):
            cx.fail('adding values of length %d and %d makes more than a template may hold' % (len(a), len(b)))
    elif op is ast.Mod and isinstance(a, str):
        cx.fail('% formatting of strings is not allowed; use ${…} or join')
    try:
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return a / b
        if op is ast.FloorDiv:
            return a // b
        return a % b
    except (TypeError, ZeroDivisionError, OverflowError) as e:
        cx.fail('%s' % e)


def _call(cx, n, scope):
    f = n.func
    if type(f) is ast.Name:
        if f.id == 'default':
            if len(n.args) != 2:
                cx.fail('default takes a value and a fallback')
            try:
                v = _ev(cx, n.args[0], scope)
            except _Undefined:
                v = None
            return _ev(cx, n.args[1], scope) if v is None else v
        args = [_ev(cx, a, scope) for a in n.args]
        try:
            return cx.made(FILTERS[f.id](cx, *args))
        except TypeError as e:
            cx.fail('%s(): %s' % (f.id, e))
    obj = _ev(cx, f.value, scope)
    args = [_ev(cx, a, scope) for a in n.args]
    kind = type(obj) if type(obj) is not tuple else list
    m = METHODS.get((kind, f.attr))
    if m is None:
        cx.fail('a value of type %s has no method %s' % (type(obj).__name__, f.attr))
    try:
        return cx.made(m(cx, obj, *args))
    except TemplateError:
        raise
    except (TypeError, ValueError) as e:
        cx.fail('.%s(): %s' % (f.attr, e))


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
            for item in list(items):
                cx.line = line
                if len(names) == 1:
                    bound = {names[0]: item}
                elif isinstance(item, (list, tuple)) and len(item) == len(names):
                    bound = dict(zip(names, item))
                else:
                    cx.fail('%% for %s: cannot unpack %r into %d names' % (', '.join(names), item, len(names)))
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


def file(path, text, variables=None, name='<template>', host=None, mode=None):
    # Renders, then writes atomically with FileSystem's writeText (no symlink followed, unchanged: no write).
    new = render(text, variables, name, host)
    try:
        old = _read(path).decode('utf-8', 'replace')
    except FileNotFoundError:
        old = None
    r = writeText(path, new, mode)
    diff = ''.join(difflib.unified_diff([] if old is None else old.splitlines(True), new.splitlines(True), path if old is not None else '/dev/null', path))
    if len(diff) > MAX_DIFF:
        diff = diff[:MAX_DIFF] + '\n… (diff cut at %d characters)\n' % MAX_DIFF
    r['diff'] = diff
    return r
