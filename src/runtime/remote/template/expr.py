# The safe expression subset of templates (the Template tool: tools/template.py, sent after this and
# filters.py). An expression is parsed with ast.parse(mode='eval'); only the node types in _OK are
# accepted, names and attributes starting with _ are refused, calls are limited to FILTERS and METHODS
# (filters.py); then _ev, our own tree walker, computes it over plain JSON data (str, int, float, bool,
# None, list, tuple, dict). Nothing is ever eval'd, exec'd or compiled to code. Sizes (MAX_OUT,
# MAX_ITEMS), all a render builds (MAX_BUILT), whole numbers (MAX_INT_BITS), evaluation steps (MAX_STEPS)
# and nesting (MAX_DEPTH) are capped, and a cancelled call stops.
import ast, reprlib, sys

MAX_OUT = 2 << 20
MAX_ITEMS = 100000
MAX_BUILT = 32 << 20
# What an item of a built list or dict counts against MAX_BUILT: a reference and, from split() or
# items(), a new object of some 50 bytes, against a character's one. Counted as one, 40 nested loops
# each holding a split() of a 2 MB text held 1.9 GB; now a render holds about 150 MB at most.
ITEM_COST = 16
MAX_STEPS = 1000000
MAX_DEPTH = 64
MAX_EXPR = 10000
# A search for a string in a string, or strip(chars), is one C call: its worst-case character
# comparisons count as steps, SCANNED_PER_STEP to one. Stripping is O(len × len(chars)) on every
# Python, and searching too before 3.10 (two-way search came in 3.10): 'a' * 2000000 stripped of
# 'b' * 1000000 + 'a' ran for minutes, deaf to the call's timeout, on any host.
SCANNED_PER_STEP = 10000
# Compiling a template is work too, counted in steps of its own: a step per CHARS_PER_STEP characters of
# a line, and for each expression PARSE_STEPS, one per character (a deeply nested one takes the parser
# milliseconds) and one per node. Uncounted, a template of 2 MB of ${a} took 24 s to compile, 16 MiB (a
# frame) minutes, deaf to the call's timeout.
CHARS_PER_STEP = 16
PARSE_STEPS = 10
QUADRATIC_SEARCH = sys.version_info < (3, 10)
# A product of big numbers is one uninterruptible step: x * x in 25 nested loops (each squaring) would
# take the host's memory and CPU long after the call timed out. No config needs a number this long.
MAX_INT_BITS = 4096


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

    def step(s, n=1):
        before = s.steps
        s.steps += n
        if s.steps > MAX_STEPS:
            s.fail('the template takes more than %d evaluation steps; it was stopped' % MAX_STEPS)
        if before >> 12 != s.steps >> 12 and s.call is not None and s.call.ev.is_set():
            raise TemplateError('cancelled')

    def scan(s, text, chars, quadratic=QUADRATIC_SEARCH):
        # Before a search of `chars` in `text` (or a strip of them): its worst case, as steps.
        s.step(1 + (len(text) * len(chars) if quadratic else len(text) + len(chars)) // SCANNED_PER_STEP)

    def weigh(s, *values):
        # Before one C call that walks whole values (==, <, in, sorted, count, hashing a tuple): a step per
        # item they hold, each time it is held, as that call visits each. Literals share what they hold:
        # [a, a, a, a] in 20 nested loops is 4^20 copies of `a` in a few bytes, and comparing two such
        # was one call that never ended; walked here, it stops at the step budget.
        todo = [v for v in values if isinstance(v, (list, tuple, dict))]
        while todo:
            x = todo.pop()
            items = (list(x.keys()) + list(x.values())) if isinstance(x, dict) else x
            s.step(1 + len(items))
            todo.extend(i for i in items if isinstance(i, (list, tuple, dict)))

    def made(s, v):
        # Everything built counts, freed or not: many big values at once cannot exhaust the host's memory.
        if isinstance(v, (str, list, tuple, dict)):
            s.built += len(v) if isinstance(v, str) else len(v) * ITEM_COST
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
    cx.step(PARSE_STEPS + len(src))
    try:
        tree = ast.parse(src.strip(), '<template>', 'eval')
    except SyntaxError as e:
        cx.fail('${%s}: invalid expression: %s' % (src, e.msg))
    except (RecursionError, MemoryError, ValueError):
        cx.fail('${%s}: the expression is nested too deeply' % src[:80])
    todo, problems = [(tree, 0)], []
    while todo:
        node, depth = todo.pop()
        cx.step()
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


# Evaluation ----------------------------------------------------------------------------------------

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
        cx.weigh(k)
        try:
            return v[k]
        except KeyError:
            cx.fail('%s has no key %s' % (_src(n.value), _brief(k)), cls=_Undefined)
        except (IndexError, TypeError, ValueError) as e:
            cx.fail('%s[%s]: %s' % (_src(n.value), _brief(k), e))
    if t is ast.List or t is ast.Tuple:
        items = [_ev(cx, x, scope) for x in n.elts]
        return items if t is ast.List else tuple(items)
    if t is ast.Dict:
        pairs = [(_ev(cx, k, scope), _ev(cx, v, scope)) for k, v in zip(n.keys, n.values)]
        cx.weigh(*(k for k, _ in pairs))
        try:
            return dict(pairs)
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


# A value in an error message: its start, never the whole (a list of 100,000 items, nested or not).
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother = 2, 80, 80


def _brief(v):
    return _BRIEF.repr(v)


def _src(n):
    try:
        return ast.unparse(n)
    except AttributeError:
        return 'the value'


def _compare(cx, op, a, b):
    # Text is never equal to a number, so `% if port == 443` with --var port=443 (text) would silently
    # take the other branch: refused as an ordering of them is.
    if (op is ast.Eq or op is ast.NotEq) and _text_and_number(a, b):
        cx.fail(TEXT_AND_NUMBER)
    if op is not ast.Is and op is not ast.IsNot:
        # `in` a dict hashes the left side alone.
        cx.weigh(a, *(() if isinstance(b, dict) and (op is ast.In or op is ast.NotIn) else (b,)))
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
            if isinstance(a, str) and isinstance(b, str):
                cx.scan(b, a)
            return (a in b) == (op is ast.In)
        if op is ast.Is:
            return a is b
        return a is not b
    except TypeError as e:
        if _text_and_number(a, b):
            cx.fail(TEXT_AND_NUMBER)
        cx.fail('cannot compare: %s' % e)


# The usual cause: `--var port=443` gives the text '443'.
TEXT_AND_NUMBER = 'cannot compare text with a number: convert the text with int(...) or float(...) (a --var value is text)'


def _text_and_number(a, b):
    kinds = {type(a), type(b)}
    return str in kinds and bool(kinds & {int, float})


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
    elif isinstance(a, int) and isinstance(b, int):
        bits = a.bit_length() + b.bit_length() if op is ast.Mult else max(a.bit_length(), b.bit_length())
        if bits > MAX_INT_BITS:
            cx.fail('arithmetic on whole numbers of more than %d bits is not allowed' % MAX_INT_BITS)
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
