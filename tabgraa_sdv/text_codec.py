"""Text codec (GReaT): a row becomes ``"age is 42, color is red"`` in a pretrained model's tokens.

The codec sees the same processed table as :class:`~tabgraa_sdv.codec.ColumnarCodec` (numbers,
timestamps as numbers, categories) and keeps one inside (``grid``): every value it writes or reads
is a point of that exact grid, so a decoded row is always a row the columnar codec can encode, and
rows travel between the model and the rest of the package (rewards, scorer, decoding to a frame)
as columnar token rows.

Text and tokens. A row in some column order is ``[BOS] "c1 is v1" ", c2 is v2" ... [EOS]``. Each
piece is tokenized on its own with the model's tokenizer and the pieces are concatenated, so the
tokens of a value never depend on its neighbours (for GPT-2's byte-level BPE that is exactly the
tokenization of the whole string, as its pre-tokenizer splits at those boundaries anyway):

* a column header: ``"age is"`` first, ``", age is"`` later (its first token, ``","``, is what
  ends the previous value);
* a category: ``" " + str(value)`` (``"None"`` for missing; commas become ``";"`` so a value can
  never contain the separator), one token trie per column;
* a number: ``" " + digits`` at the column's fixed decimals (``"-12.50"`` for 2 decimals), spelled
  one character per token (``" -"``, ``"1"``, ``"2"``, ``"."``, ``"5"``, ``"0"``): a 12-token
  alphabet whose grammar is exact, whatever multi-digit tokens the vocabulary has.

Grammar. Headers and separators are forced. A category is forced through its column's trie.
A number is forced through a digit automaton over the column's exact grid: a character is allowed
only if some legal grid value (``k_min + step * k`` with ``k`` in one of the column's bins, scaled
by ``10 ** decimals``) has the text so far plus that character as a prefix; the value may end only
when it is complete and legal. So every sampled sequence, from any model, trained or not, decodes
to a valid row: categories seen in training, numbers on the column's grid, within its range and at
its precision. Nothing is clipped or rejected.

The codec is torch-free and SDV-free; ``pretrained.py`` runs the model over it.
"""

import bisect
from dataclasses import dataclass

import numpy as np

from tabgraa_sdv.codec import ColumnarCodec, NumericColumn

MISSING_TEXT = 'None'
DIGITS = '0123456789'


def encode_text(tokenizer, text):
    """Token ids of ``text`` alone (no special tokens), as a tuple."""
    return tuple(int(t) for t in tokenizer.encode(text, add_special_tokens=False))


def number_text(scaled, decimals):
    """Text of the integer ``scaled`` = value * 10**decimals, with exactly ``decimals`` decimals."""
    sign = '-' if scaled < 0 else ''
    whole, fraction = divmod(abs(int(scaled)), 10**decimals)
    return f'{sign}{whole}.{fraction:0{decimals}d}' if decimals else f'{sign}{whole}'


@dataclass(frozen=True)
class Options:
    """What may come next inside a value: these tokens, and (if ``terminal``) the end of it."""

    tokens: tuple
    terminal: bool


class CategoryGrammar:
    """One categorical column: a trie over the token paths of its values (index = local code)."""

    start = 0

    def __init__(self, name, paths):
        self.name = name
        self.paths = [tuple(p) for p in paths]
        children, value_of = [{}], {}
        for code, path in enumerate(self.paths):
            node = 0
            for token in path:
                child = children[node].get(token)
                if child is None:
                    child = len(children)
                    children[node][token] = child
                    children.append({})
                node = child
            if node in value_of:
                raise ValueError(
                    f"Two categories of column '{name}' have the same tokens in this tokenizer; "
                    'they could not be told apart.'
                )
            value_of[node] = code
        self.children = children
        self.value_of = value_of
        self._options = [Options(tuple(child), node in value_of)
                         for node, child in enumerate(children)]

    def options(self, state):
        return self._options[state]

    def step(self, state, token):
        return self.children[state][token]

    def codes(self, state):
        return np.array([self.value_of[state]], dtype=np.int64)

    def path(self, codes):
        return self.paths[int(codes[0])]

    def vocabulary(self):
        return {token for child in self.children for token in child}


class NumberGrammar:
    """One numeric column: its values as digit strings, constrained to the column's exact grid.

    States are the text so far (a str), or an int ``j`` = tokens of the missing-value text emitted.
    """

    start = ''

    def __init__(self, column, lead, mid, missing):
        if not isinstance(column, NumericColumn):
            raise TypeError('NumberGrammar needs a NumericColumn.')
        self.column = column
        self.name = column.name
        self.decimals = int(column.decimals)
        self.k_min, self.step_size = int(column.k_min), int(column.step)
        # Legal grid indices: the union of the bins, merged into sorted disjoint intervals.
        lows, highs = [], []
        for start, width in zip(column.starts.tolist(), column.widths.tolist()):
            if lows and start <= highs[-1] + 1:
                highs[-1] = max(highs[-1], start + width - 1)
            else:
                lows.append(int(start))
                highs.append(int(start + width - 1))
        self.lows, self.highs = lows, highs
        if lows:
            extreme = max(abs(self.k_min + self.step_size * lows[0]),
                          abs(self.k_min + self.step_size * highs[-1]))
            self.max_int_digits = len(str(extreme // 10**self.decimals))
        else:
            self.max_int_digits = 1
        self.lead, self.mid = dict(lead), dict(mid)  # character -> token
        self.char_of_lead = {t: c for c, t in self.lead.items()}
        self.char_of_mid = {t: c for c, t in self.mid.items()}
        self.missing = tuple(missing) if column.has_nan else None
        if self.missing is not None and self.missing[0] in self.char_of_lead:
            raise ValueError(
                f"The missing-value text of column '{self.name}' starts with a number token."
            )
        self._options = {}

    # -- the grid, as intervals of scaled integers
    def _legal(self, negative, low, high):
        """Whether a legal value has magnitude in [low, high] (and the sign asked for)."""
        if negative:
            low = max(low, 1)  # '-0...' is not how zero is written
            low, high = -high, -low
        if low > high:
            return False
        k_low = -((self.k_min - low) // self.step_size)  # ceil((low - k_min) / step)
        k_high = (high - self.k_min) // self.step_size
        if k_low > k_high:
            return False
        i = bisect.bisect_left(self.highs, k_low)
        return i < len(self.highs) and self.lows[i] <= k_high

    def _parse(self, text):
        """(negative, integer part, fraction part or None), or None if no value starts so."""
        negative = text.startswith('-')
        body = text[1:] if negative else text
        if '-' in body:
            return None
        if '.' in body:
            whole, fraction = body.split('.', 1)
            if not self.decimals or not whole or '.' in fraction or len(fraction) > self.decimals:
                return None
        else:
            whole, fraction = body, None
        if (len(whole) > 1 and whole[0] == '0') or len(whole) > self.max_int_digits:
            return None
        return negative, whole, fraction

    def _magnitudes(self, whole, fraction):
        """Intervals of scaled magnitudes whose text starts with ``whole[.fraction]``."""
        scale = 10**self.decimals
        if fraction is not None:
            unit = 10**(self.decimals - len(fraction))
            base = int(whole) * scale + (int(fraction) * unit if fraction else 0)
            return [(base, base + unit - 1)]
        if not whole:
            return [(0, 10**self.max_int_digits * scale - 1)]
        head = int(whole)
        extra = [0] if whole == '0' else range(self.max_int_digits - len(whole) + 1)
        return [(head * 10**e * scale, ((head + 1) * 10**e - 1) * scale + scale - 1)
                for e in extra]

    def viable(self, text):
        """Whether some legal value's text starts with ``text``."""
        parsed = self._parse(text)
        if parsed is None:
            return False
        negative, whole, fraction = parsed
        return any(self._legal(negative, a, b) for a, b in self._magnitudes(whole, fraction))

    def complete(self, text):
        """Whether ``text`` is the whole text of a legal value."""
        parsed = self._parse(text)
        if parsed is None:
            return False
        negative, whole, fraction = parsed
        if not whole or len(fraction or '') != self.decimals:
            return False
        magnitude = self._magnitudes(whole, fraction)[0][0]
        return self._legal(negative, magnitude, magnitude)

    # -- the automaton
    def options(self, state):
        if isinstance(state, int):  # inside the missing-value text
            if state < len(self.missing):
                return Options((self.missing[state],), False)
            return Options((), True)
        cached = self._options.get(state)
        if cached is None:
            table = self.lead if state == '' else self.mid
            tokens = [table[c] for c in table if self.viable(state + c)]
            if state == '' and self.missing is not None:
                tokens.append(self.missing[0])
            cached = Options(tuple(tokens), self.complete(state))
            self._options[state] = cached
        return cached

    def step(self, state, token):
        if isinstance(state, int):
            return state + 1
        if state == '':
            if self.missing is not None and token == self.missing[0]:
                return 1
            return self.char_of_lead[token]
        return state + self.char_of_mid[token]

    def codes(self, state):
        if isinstance(state, int):
            return self.column.codes_of_grid(np.array([-1]))[0]
        scaled = int(state.replace('.', ''))
        k = (scaled - self.k_min) // self.step_size
        return self.column.codes_of_grid(np.array([k], dtype=np.int64))[0]

    def path(self, codes):
        k, nan = self.column.grid_of_codes(np.asarray(codes)[None, :])
        if nan[0]:
            return self.missing
        text = number_text(self.k_min + self.step_size * int(k[0]), self.decimals)
        return (self.lead[text[0]],) + tuple(self.mid[c] for c in text[1:])

    def vocabulary(self):
        out = set(self.lead.values()) | set(self.mid.values())
        return out | set(self.missing or ())

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_options'] = {}  # a cache: rebuilt on demand
        return state


class TextCodec:
    """Rows of a processed table as grammar-constrained token sequences of a given tokenizer.

    Args:
        max_base, max_decimals: as for :class:`~tabgraa_sdv.codec.ColumnarCodec` (the grid).
        missing_text (str): how a missing value is written. Defaults to ``'None'``.
    """

    def __init__(self, max_base=256, max_decimals=10, missing_text=MISSING_TEXT):
        self.max_base = max_base
        self.max_decimals = max_decimals
        self.missing_text = missing_text
        self.grid = None

    # ------------------------------------------------------------------------------- fitting
    def fit(self, data, tokenizer):
        """Build the grid, the headers and each column's value grammar. The tokenizer is only
        used here; the fitted codec holds token ids, not the tokenizer."""
        self.grid = ColumnarCodec(max_base=self.max_base, max_decimals=self.max_decimals).fit(data)
        bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        bos = bos if bos is not None else eos
        eos = eos if eos is not None else bos
        if bos is None:
            raise ValueError('The tokenizer has neither a BOS nor an EOS token to frame rows with.')
        self.bos, self.eos = int(bos), int(eos)

        def single(text):
            tokens = encode_text(tokenizer, text)
            if len(tokens) == 1:
                return tokens[0]
            # A tokenizer that prefixes a space when encoding may still hold the bare piece.
            token = tokenizer.convert_tokens_to_ids(text)
            if isinstance(token, int) and token != tokenizer.unk_token_id \
                    and tokenizer.decode([token]) == text:
                return token
            return None

        mid = {c: single(c) for c in '-' + DIGITS + '.'}
        if any(t is None for t in mid.values()):
            raise ValueError(
                'This tokenizer cannot spell numbers one character a token (a digit, "-" or "." '
                'is not a single token); the text codec needs that.'
            )
        lead = {c: single(' ' + c) for c in '-' + DIGITS}
        # Without single-token " 4", " -": the space is a forced token of the numeric headers.
        self.number_space = () if all(t is not None for t in lead.values()) else \
            encode_text(tokenizer, ' ')
        if self.number_space:
            lead = {c: mid[c] for c in '-' + DIGITS}
        missing_number = encode_text(tokenizer, ('' if self.number_space else ' ')
                                     + self.missing_text)

        self.grammars, self.header_first, self.header_later = [], [], []
        for column in self.grid.columns:
            space = ()
            if isinstance(column, NumericColumn):
                grammar = NumberGrammar(column, lead, mid, missing_number)
                space = self.number_space
            else:
                texts = self._category_texts(column)
                grammar = CategoryGrammar(column.name, [encode_text(tokenizer, ' ' + t)
                                                        for t in texts])
            self.grammars.append(grammar)
            self.header_first.append(encode_text(tokenizer, f'{column.name} is') + space)
            self.header_later.append(encode_text(tokenizer, f', {column.name} is') + space)
        self._check_separators()
        self.max_length = 1 + sum(
            len(h) + self._longest_value(g) + 1
            for h, g in zip(self.header_later, self.grammars)
        )
        self._reset_caches()
        return self

    def _category_texts(self, column):
        texts, seen = [], set()
        for value in column.values:
            if isinstance(value, float) and np.isnan(value) or value is None:
                text = self.missing_text
            else:
                text = str(value).replace(',', ';')
            unique, n = text, 2
            while unique in seen:
                unique, n = f'{text} ({n})', n + 1
            seen.add(unique)
            texts.append(unique)
        return texts

    def _check_separators(self):
        follows = {h[0] for h in self.header_later} | {self.eos}
        for grammar in self.grammars:
            clash = grammar.vocabulary() & follows
            if clash:
                raise ValueError(
                    f"A value of column '{grammar.name}' uses token {sorted(clash)[0]}, which "
                    'also ends a value (separator or end of row) in this tokenizer; rename the '
                    'values or use another tokenizer.'
                )
        if any(len(h) == 0 for h in self.header_first + self.header_later):
            raise ValueError('A column header encodes to no tokens.')

    def _longest_value(self, grammar):
        if isinstance(grammar, CategoryGrammar):
            return max(len(p) for p in grammar.paths)
        number = 1 + grammar.max_int_digits + (1 + grammar.decimals if grammar.decimals else 0)
        return max(number, len(grammar.missing or ()))

    def _reset_caches(self):
        self._path_ids = [dict() for _ in self.grammars]  # codes -> path id, per column
        self._paths = [[] for _ in self.grammars]  # path id -> (tokens, options)
        self._set_of = {}  # candidate tuple -> set id (0: forced, no choice)
        self._sets = [()]
        self._set_ids = {}  # (column, path id, follow) -> set id of each predicted token
        self._table = None

    def __getstate__(self):
        state = dict(self.__dict__)
        for key in ('_path_ids', '_paths', '_set_of', '_sets', '_set_ids', '_table'):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.grid is not None:
            self._reset_caches()

    # ------------------------------------------------------------- the columnar side (grid)
    @property
    def columns(self):
        return self.grid.columns

    @property
    def column_names(self):
        return self.grid.column_names

    @property
    def n_columns(self):
        return len(self.grid.columns)

    def encode_columns(self, data, columns=None):
        return self.grid.encode_columns(data, columns)

    def encode(self, data):
        """Columnar token rows of ``data`` (the form rows take outside the model)."""
        return self.grid.encode(data)

    def decode(self, tokens):
        return self.grid.decode(tokens)

    # ------------------------------------------------------------------ values and paths
    def path_id(self, c, codes):
        """Id of the token path of one value (local codes of column ``c``'s slots)."""
        key = tuple(int(x) for x in codes)
        found = self._path_ids[c].get(key)
        if found is None:
            grammar = self.grammars[c]
            tokens = tuple(grammar.path(np.asarray(key, dtype=np.int64)))
            state, options = grammar.start, []
            for token in tokens:
                option = grammar.options(state)
                if token not in option.tokens:
                    raise AssertionError(f"Column '{grammar.name}': the value's tokens leave "
                                         'the grammar (a codec bug).')
                options.append(option)
                state = grammar.step(state, token)
            options.append(grammar.options(state))
            if not options[-1].terminal:
                raise AssertionError(f"Column '{grammar.name}': a value's path is incomplete.")
            found = len(self._paths[c])
            self._paths[c].append((tokens, options))
            self._path_ids[c][key] = found
        return found

    def value_ids(self, grid_tokens):
        """Path id of every value: ``[rows, columns]`` for columnar token rows."""
        local = np.asarray(grid_tokens, dtype=np.int64) - self.grid.slot_start[None, :]
        out = np.empty((len(local), self.n_columns), dtype=np.int64)
        for c, slots in enumerate(self.grid.column_slots):
            uniques, inverse = np.unique(local[:, slots], axis=0, return_inverse=True)
            ids = np.array([self.path_id(c, u) for u in uniques], dtype=np.int64)
            out[:, c] = ids[inverse.reshape(-1)]
        return out

    def value_tokens(self, c, path_id):
        return self._paths[c][path_id][0]

    def _set_id(self, option, follow):
        candidates = option.tokens + ((follow,) if option.terminal else ())
        if len(candidates) == 1:
            return 0
        found = self._set_of.get(candidates)
        if found is None:
            found = len(self._sets)
            self._sets.append(candidates)
            self._set_of[candidates] = found
        return found

    def _value_sets(self, c, path_id, follow):
        key = (c, path_id, follow)
        found = self._set_ids.get(key)
        if found is None:
            found = [self._set_id(option, follow) for option in self._paths[c][path_id][1]]
            self._set_ids[key] = found
        return found

    def set_table(self):
        """Candidate tokens of every choice set, ``[sets, most candidates]`` padded with -1
        (row 0: no choice)."""
        if self._table is None or len(self._table) != len(self._sets):
            width = max(1, max(len(s) for s in self._sets))
            table = np.full((len(self._sets), width), -1, dtype=np.int64)
            for i, s in enumerate(self._sets):
                table[i, :len(s)] = s
            self._table = table
        return self._table

    # -------------------------------------------------------------------------- sequences
    def sequences(self, value_ids, orders):
        """Token sequences of rows (path ids ``[rows, columns]``) in the given column orders.

        Returns ``ids`` and ``sets``, ``[rows, longest]`` int arrays: ``ids[:, 0]`` is BOS, rows
        are padded with EOS after their end; ``sets[:, t]`` is the choice set ``ids[:, t]`` was
        drawn from (0 where the grammar forces the token, and on padding).
        """
        value_ids, orders = np.asarray(value_ids), np.asarray(orders)
        n_columns = self.n_columns
        rows = []
        for r in range(len(value_ids)):
            order = orders[r].tolist()
            ids, sets = [self.bos], [0]
            for i, c in enumerate(order):
                if i == 0:
                    header = self.header_first[c]
                    ids.extend(header)
                    sets.extend([0] * len(header))
                else:  # its first token ended the previous value
                    header = self.header_later[c]
                    ids.extend(header[1:])
                    sets.extend([0] * (len(header) - 1))
                path = int(value_ids[r, c])
                follow = self.header_later[order[i + 1]][0] if i + 1 < n_columns else self.eos
                ids.extend(self._paths[c][path][0])
                ids.append(follow)
                sets.extend(self._value_sets(c, path, follow))
            rows.append((ids, sets))
        longest = max(len(ids) for ids, _ in rows)
        out_ids = np.full((len(rows), longest), self.eos, dtype=np.int64)
        out_sets = np.zeros((len(rows), longest), dtype=np.int64)
        for r, (ids, sets) in enumerate(rows):
            out_ids[r, :len(ids)] = ids
            out_sets[r, :len(sets)] = sets
        return out_ids, out_sets

    def decoder(self, order, n_rows, conditions=None):
        """A :class:`GrammarDecoder` for ``n_rows`` rows in column ``order``; ``conditions``
        maps a column index to the local codes ``[n_rows, its slots]`` it must take (those
        columns come first in ``order``)."""
        return GrammarDecoder(self, order, n_rows, conditions or {})


class GrammarDecoder:
    """Where each row of a batch stands in its grammar while it is sampled token by token.

    A row's program alternates forced runs (headers, separators, condition values, EOS) and free
    values (a column's grammar). Each step, :meth:`next_options` says, per row, the forced token
    or the candidate tokens; :meth:`advance` takes the chosen tokens. Rows may be at different
    places (values have different lengths); finished rows emit EOS as padding.
    """

    def __init__(self, codec, order, n_rows, conditions):
        self.codec = codec
        self.n_rows = n_rows
        order = [int(c) for c in order]
        self.codes = np.zeros((n_rows, codec.grid.n_slots), dtype=np.int64)
        for c, codes in conditions.items():
            self.codes[:, codec.grid.column_slots[c]] = codes
        condition_paths = {c: [codec.path_id(c, row) for row in np.asarray(codes)]
                           for c, codes in conditions.items()}

        def program(r):
            items, run = [], []
            for i, c in enumerate(order):
                run.extend(codec.header_first[c] if i == 0 else codec.header_later[c])
                if c in condition_paths:
                    run.extend(codec.value_tokens(c, condition_paths[c][r]))
                else:
                    items.extend([tuple(run), c])
                    run = []
            run.append(codec.eos)
            items.append(tuple(run))
            return items

        if condition_paths:
            self.programs = [program(r) for r in range(n_rows)]
        else:
            self.programs = [program(0)] * n_rows
        self.item = [0] * n_rows
        self.offset = [0] * n_rows
        self.state = [None] * n_rows
        self.done = [False] * n_rows
        self.n_done = 0

    @property
    def finished(self):
        return self.n_done == self.n_rows

    def _options(self, r):
        program, i = self.programs[r], self.item[r]
        c = program[i]
        option = self.codec.grammars[c].options(self.state[r])
        if option.terminal:
            return option.tokens + (program[i + 1][0],), option
        return option.tokens, option

    def next_options(self):
        """``forced`` (a token per row, -1 where the row must choose), and the choosing rows
        with their candidate tuples."""
        forced = [self.codec.eos] * self.n_rows
        rows, candidates = [], []
        for r in range(self.n_rows):
            if self.done[r]:
                continue
            item = self.programs[r][self.item[r]]
            if isinstance(item, tuple):
                forced[r] = item[self.offset[r]]
                continue
            tokens, _ = self._options(r)
            if not tokens:
                raise AssertionError('A value grammar reached a dead end (a codec bug).')
            if len(tokens) == 1:
                forced[r] = tokens[0]
            else:
                forced[r] = -1
                rows.append(r)
                candidates.append(tokens)
        return forced, rows, candidates

    def _enter(self, r, item, offset):
        program = self.programs[r]
        while item < len(program) and isinstance(program[item], tuple) \
                and offset >= len(program[item]):
            item, offset = item + 1, 0
        self.item[r], self.offset[r] = item, offset
        if item == len(program):
            self.done[r] = True
            self.n_done += 1
        elif not isinstance(program[item], tuple):
            self.state[r] = self.codec.grammars[program[item]].start

    def advance(self, tokens):
        """Move every unfinished row past its chosen token."""
        for r in range(self.n_rows):
            if self.done[r]:
                continue
            program, i = self.programs[r], self.item[r]
            item = program[i]
            token = int(tokens[r])
            if isinstance(item, tuple):
                self._enter(r, i, self.offset[r] + 1)
                continue
            grammar = self.codec.grammars[item]
            option = grammar.options(self.state[r])
            if option.terminal and token == program[i + 1][0]:
                self.codes[r, self.codec.grid.column_slots[item]] = grammar.codes(self.state[r])
                self._enter(r, i + 1, 1)
            else:
                self.state[r] = grammar.step(self.state[r], token)

    def grid_tokens(self):
        """The sampled rows as columnar token rows ``[rows, slots]``."""
        return self.codes + self.codec.grid.slot_start[None, :]
