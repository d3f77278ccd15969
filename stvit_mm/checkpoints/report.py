"""Human-readable text about conversions: key lists as exact patterns, error lists, the
one-paragraph report of tools/convert_checkpoint.py. Pure formatting; no tensors touched."""
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence

MAX_LISTED = 20  # problems listed per kind in an error message
_ERROR_TITLES = {'unmapped': ('source key', 'with no place in the target'),
                 'missing': ('target key', 'not in the checkpoint'),
                 'shape': ('tensor', 'of another shape')}


def count(number: int, noun: str) -> str:
    """'1 key', '2 keys'."""
    return f'{number} {noun}' + ('' if number == 1 else 's')


def compact_keys(keys: Sequence[str], limit: Optional[int] = None) -> str:
    """:func:`key_patterns` joined, at most ``limit`` of them."""
    patterns = key_patterns(keys)
    if limit is not None and len(patterns) > limit:
        patterns = patterns[:limit] + [f'... ({count(len(patterns) - limit, "more pattern")})']
    return ', '.join(patterns)


def key_patterns(keys: Sequence[str]) -> List[str]:
    """Keys summarised as exact patterns, e.g. 'stages.{0,1,3}.blocks.{0-1}.norm1.{weight,bias}'.

    Keys are merged only where they differ in a single place (the last name, or
    one number), so every pattern stands for exactly the keys it came from.
    """
    items = [tuple(_slot(part) for part in key.split('.')) for key in keys]
    items = _merge_at(items, lambda parts: len(parts) - 1)  # weight/bias siblings
    width = max((len(parts) for parts in items), default=0)
    for position in reversed(range(width)):
        items = _merge_at(items, lambda parts, p=position: p
                          if p < len(parts) and isinstance(parts[p], tuple)
                          and all(isinstance(v, int) for v in parts[p]) else None)
    return ['.'.join(_render(part) for part in parts) for parts in items]


def _slot(part: str) -> tuple:
    """A key component as a one-value slot: numbers as ints, so that they sort and merge."""
    return (int(part), ) if part.isdigit() else (part, )


def _merge_at(items: List[tuple], position_of: Callable[[tuple], Optional[int]]) -> List[tuple]:
    """Merge items equal everywhere except at ``position_of(item)`` (None: leave it alone)."""
    groups: Dict[tuple, list] = {}  # (item with a hole at the position, position) -> values
    for parts in items:
        position = position_of(parts)
        if position is None:
            groups.setdefault((parts, None), [])
            continue
        hole = parts[:position] + (None, ) + parts[position + 1:]
        values = groups.setdefault((hole, position), [])
        values += [v for v in parts[position] if v not in values]
    merged = []
    for (parts, position), values in groups.items():
        if position is None:
            merged.append(parts)
            continue
        if all(isinstance(v, int) for v in values):
            values = sorted(values)
        merged.append(parts[:position] + (tuple(values), ) + parts[position + 1:])
    return merged


def _render(slot: tuple) -> str:
    if len(slot) == 1:
        return str(slot[0])
    if all(isinstance(v, int) for v in slot) and list(slot) == list(range(slot[0], slot[-1] + 1)):
        return f'{{{slot[0]}-{slot[-1]}}}'
    return '{' + ','.join(map(str, slot)) + '}'


def summarise_reasons(reasons: Dict[str, str], examples: int = 3) -> str:
    """{key: why} grouped by why: '2 x why (key patterns); ...', or 'none'."""
    by_reason: Dict[str, List[str]] = {}
    for key, why in reasons.items():
        by_reason.setdefault(why, []).append(key)
    return '; '.join(f'{len(keys)} x {why} ({compact_keys(keys, limit=examples)})'
                     for why, keys in by_reason.items()) or 'none'


def describe_errors(errors, target_name: str) -> str:
    """The message that stops a conversion: its problems (``Problem``) listed by kind."""
    lines = [f'cannot convert for {target_name}:']
    for kind, (noun, what) in _ERROR_TITLES.items():
        found = [p for p in errors if p.kind == kind]
        if not found:
            continue
        lines.append(f'  {count(len(found), noun)} {what}:')
        # missing keys say nothing but their name: list them as patterns
        texts = (key_patterns([p.names[0] for p in found]) if kind == 'missing' else
                 [p.text for p in found])
        lines += [f'    {text}' for text in texts[:MAX_LISTED]]
        if len(texts) > MAX_LISTED:
            lines.append(f'    ... and {len(texts) - MAX_LISTED} more')
    lines.append('Check --from and --arch/--config, or leave these keys out with --ignore REGEX '
                 '(matched against the key names above).')
    return '\n'.join(lines)


def format_report(result, src: str, dst: str) -> str:
    """One paragraph about a ``Result``: what was mapped, dropped, ignored, left at
    initialisation, and how to load ``dst``."""
    return '; '.join(_report_parts(result, src)) + f'. Wrote {dst}: {_how_to_load(result, dst)}.'


def format_load_report(result, src: str) -> str:
    """:func:`format_report` for a checkpoint converted while it is loaded (nothing written)."""
    return '; '.join(_report_parts(result, src)) + '. Loading the converted tensors.'


def _report_parts(result, src: str) -> List[str]:
    backbone_written = len(result.state_dict) - len(result.carried)
    parts = [f'Converted {src} (--from {result.source}, {result.layout} layout) for '
             f'{result.target}: {len(result.source_keys)} source tensors, '
             f'{len(result.mapped)} mapped, {backbone_written} backbone tensors written']
    if result.carried:
        how = ('checked against the target' if result.carried_checked else
               'not checked: give --config to check them')
        parts.append(f'{count(len(result.carried), "non-backbone tensor")} kept under their names '
                     f'({compact_keys(sorted({k.split(".")[0] + ".*" for k in result.carried}))}'
                     f'; {how})')
    if result.dropped:
        parts.append(f'dropped by design {len(result.dropped)}: '
                     + summarise_reasons(result.dropped))
    if result.ignored:
        parts.append(f'ignored (--ignore) {len(result.ignored)}: '
                     f'{compact_keys(list(result.ignored), limit=6)}')
    if result.new:
        parts.append(f'left at initialisation (new, the source cannot have them) '
                     f'{len(result.new)}: {_describe_new(result)}')
    else:
        parts.append('no key left at initialisation')
    return parts


def _describe_new(result) -> str:
    """New backbone keys as patterns; a new neck/heads as its modules with their key counts."""
    task = [k for k in result.new
            if result.whole_model and not k.startswith(result.backbone_prefix)]
    backbone = [k for k in result.new if k not in task]
    described = [compact_keys(backbone, limit=12)] if backbone else []
    described += [f'{name}.* ({number})'
                  for name, number in Counter(k.split('.')[0] for k in task).items()]
    return ', '.join(described)


def _how_to_load(result, dst: str) -> str:
    if result.whole_model:
        return f"load it with load_from='{dst}' in the config (or tools/test.py CONFIG {dst})"
    if result.backbone_prefix:
        return (f"its backbone keys start with 'backbone.': load_from='{dst}' in a whole-model "
                f"config, or init_cfg=dict(type='Pretrained', checkpoint='{dst}', "
                "prefix='backbone.') in the backbone")
    return f"load it with init_cfg=dict(type='Pretrained', checkpoint='{dst}') in the backbone"
