# The vocabulary of calls of template expressions (expr.py): the filters, the methods of plain data,
# and the size checks that keep what they build within the caps.
import json as jsonlib


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
    cx.scan(s, old)
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
    except (TypeError, ValueError, OverflowError) as e:
        cx.fail('int(%s): %s' % (_brief(v), e))


def _f_float(cx, v):
    try:
        return float(v)
    except (TypeError, ValueError) as e:
        cx.fail('float(%s): %s' % (_brief(v), e))


def _f_sorted(cx, items):
    items = _seq(cx, items, 'sorted')
    cx.weigh(items)
    try:
        return sorted(items)
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


def _weighing(kind, name, f):
    # A method that compares or hashes its argument (and a list's count and index, every item): weighed first.
    plain = _on(kind, name, f)

    def method(cx, v, *a):
        cx.weigh(*((v,) + a if isinstance(v, (list, tuple)) else a))
        return plain(cx, v, *a)
    return method


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
    (dict, 'items'): _on(dict, 'items', lambda d: [tuple(kv) for kv in d.items()]), (dict, 'get'): _weighing(dict, 'get', dict.get),
    (list, 'count'): _weighing((list, tuple), 'count', lambda l, x: l.count(x)), (list, 'index'): _weighing((list, tuple), 'index', lambda l, x: l.index(x)),
}
for _m in ('upper', 'lower', 'strip', 'lstrip', 'rstrip', 'split', 'startswith', 'endswith'):
    METHODS[(str, _m)] = _on(str, _m, getattr(str, _m))


def _scanning(name, quadratic):
    # split(sep) searches for sep, strip(chars) looks each character up in chars: cx.scan counts the work first.
    plain = METHODS[(str, name)]

    def method(cx, s, *a):
        if isinstance(s, str) and a and isinstance(a[0], str):
            cx.scan(s, a[0], quadratic)
        return plain(cx, s, *a)
    return method


METHODS[(str, 'split')] = _scanning('split', QUADRATIC_SEARCH)
for _m in ('strip', 'lstrip', 'rstrip'):
    METHODS[(str, _m)] = _scanning(_m, True)
_METHOD_NAMES = {m for _, m in METHODS}
