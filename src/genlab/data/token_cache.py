"""A corpus's token ids on disk: tokenized once into a flat `.bin` file and read back through
`numpy.memmap`, a map per read, so that memory does not grow with the corpus.

The file holds the ids as uint16, or uint32 for vocabularies of more than 65535 ids (nanoGPT's
`train.bin`), and is named by the text's hash and the tokenizer's (`text_tokens/<text>_<tokenizer>
.bin` under the cache folder). It is written chunk by chunk (several processes when the
tokenizer is slow, results in order), with a progress bar on a terminal, through a temporary
file that replaces it whole. A character vocabulary is read from the text in one streaming
pass and kept beside the token files (`<text>_chars.json`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from genlab.data.text_source import CHUNK_CHARS, END_OF_FILE
from genlab.errors import GenlabError
from genlab.text.chars import CharacterSet
from genlab.text.tokenizer import tokenizer_key
from genlab.utils.atomic import replace_atomically
from genlab.utils.progress import progress

log = logging.getLogger(__name__)

Encode = Callable[[str], np.ndarray]


class TextSource(Protocol):
    size: int

    def digest(self) -> str: ...

    def chunks(self, chunk_chars: int = CHUNK_CHARS) -> Iterator[str | None]: ...


def token_dtype(vocab_size: int) -> type:
    """uint16 while every id fits in it, else uint32."""
    return np.uint16 if vocab_size <= 65535 else np.uint32


class TokenizerEncode:
    """A Hugging Face tokenizer as `Encode`: a chunk's ids (no special tokens added)."""

    def __init__(self, tokenizer, dtype: type):
        self.tokenizer, self.dtype = tokenizer, dtype

    def __call__(self, text: str) -> np.ndarray:
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return np.asarray(ids, dtype=self.dtype)


def cached_characters(source: TextSource, folder: Path) -> list[str]:
    """The sorted characters of the whole text (nanoGPT's `sorted(set(data))`), read in one
    streaming pass the first time and kept as `<text hash>_chars.json`."""
    path = folder / f"{source.digest()}_chars.json"
    try:
        characters = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(characters, list) and all(isinstance(c, str) for c in characters):
            return characters
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as err:
        log.warning("ignoring the damaged cache file %s (%s): rebuilding it", path, err)
    start = time.perf_counter()
    seen = CharacterSet()
    for chunk in progress(source.chunks(), _chunk_count(source), "reading characters"):
        if chunk is not END_OF_FILE:
            seen.add(chunk)
    characters = seen.sorted()
    text = json.dumps(characters)
    replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    log.info(
        "%d characters in the text, read in %.1f s (kept in %s)",
        len(characters),
        time.perf_counter() - start,
        path,
    )
    return characters


def token_file(
    source: TextSource,
    tokenizer,
    folder: Path,
    encode: Encode | None = None,
    processes: int = 1,
) -> TokenFile:
    """The whole text's ids, in the token file; tokenized into the cache first if this text and
    tokenizer were not seen. `encode`: a faster equivalent of the tokenizer (a character
    table); `processes` > 1 tokenizes chunks in up to that many processes (for slow
    tokenizers; one for a text of a few chunks, where starting them would cost more)."""
    dtype = token_dtype(len(tokenizer))
    path = folder / f"{source.digest()}_{tokenizer_key(tokenizer)}.bin"
    tokens = _open(path, dtype)
    if tokens is not None:
        log.info("reading %d cached tokens from %s", len(tokens), path)
        return tokens
    log.info("tokenizing %.1f MB of text, once (cached in %s)", source.size / 1e6, folder)
    start = time.perf_counter()
    chunks = _chunk_count(source)
    count = write_tokens(
        source.chunks(),
        encode or TokenizerEncode(tokenizer, dtype),
        path,
        end_of_text=tokenizer.eos_token_id,
        dtype=dtype,
        processes=processes if chunks >= 2 * processes else 1,
        total=chunks,
    )
    if count == 0:
        path.unlink(missing_ok=True)
        raise GenlabError("the text gives no tokens: give a file with text in it")
    log.info("tokenized into %d tokens in %.1f s", count, time.perf_counter() - start)
    return _open(path, dtype)


def write_tokens(
    chunks: Iterable[str | None],
    encode: Encode,
    path: Path,
    end_of_text: int | None,
    dtype: type = np.uint16,
    processes: int = 1,
    total: int | None = None,
) -> int:
    """Encode the chunks in order into `path` (written whole), the end-of-text id at each
    END_OF_FILE; return the number of tokens."""
    separator = np.array([] if end_of_text is None else [end_of_text], dtype=dtype)
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with tmp.open("wb") as f:
            for ids in progress(_encoded(chunks, encode, processes), total, "tokenizing"):
                ids = separator if ids is END_OF_FILE else ids
                f.write(np.ascontiguousarray(ids, dtype=dtype).tobytes())
                count += len(ids)

    replace_atomically(path, write)
    return count


def _encoded(
    chunks: Iterable[str | None], encode: Encode, processes: int
) -> Iterator[np.ndarray | None]:
    """Each chunk's ids, in order; END_OF_FILE passes through."""
    if processes <= 1:
        for chunk in chunks:
            yield END_OF_FILE if chunk is END_OF_FILE else encode(chunk)
        return
    with multiprocessing.get_context().Pool(processes, _start_worker, (encode,)) as pool:
        # A few chunks per process in flight: results stay in order, and the text is read
        # no faster than it is tokenized (Pool.imap would queue all of it).
        pending: deque = deque()
        for chunk in chunks:
            pending.append(chunk if chunk is END_OF_FILE else pool.apply_async(_encode, (chunk,)))
            if len(pending) >= 2 * processes:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())


def _result(item) -> np.ndarray | None:
    return END_OF_FILE if item is END_OF_FILE else item.get()


_worker_encode: Encode | None = None


def _start_worker(encode: Encode) -> None:
    global _worker_encode
    _worker_encode = encode


def _encode(chunk: str) -> np.ndarray:
    return _worker_encode(chunk)


class TokenFile:
    """The ids of a token file from `start` to `end`, read through a memory map that is opened
    for each read and closed after it, as nanoGPT's get_batch does: a map kept open keeps every
    page it has read resident in the process, so that its memory would grow with the corpus.
    Slicing gives a part of the file (nothing is read); any other index reads (a copy)."""

    def __init__(self, path: Path, dtype: type, start: int = 0, end: int | None = None):
        self.path, self.dtype = path, np.dtype(dtype)
        self.start = start
        self.end = path.stat().st_size // self.dtype.itemsize if end is None else end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("a token file is sliced in one piece (step 1)")
            return TokenFile(
                self.path, self.dtype, self.start + start, self.start + max(start, stop)
            )
        tokens = np.memmap(
            self.path,
            dtype=self.dtype,
            mode="r",
            offset=self.start * self.dtype.itemsize,
            shape=(len(self),),
        )
        read = np.array(tokens[index])
        del tokens  # unmapped: the pages it read leave this process
        return read


def _open(path: Path, dtype: type) -> TokenFile | None:
    """The token file at `path`, or None when there is none or it is damaged."""
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size == 0 or size % np.dtype(dtype).itemsize:
        log.warning("ignoring the damaged cache file %s: rebuilding it", path)
        path.unlink(missing_ok=True)
        return None
    return TokenFile(path, dtype)


def _chunk_count(source: TextSource) -> int:
    return max(1, source.size // CHUNK_CHARS + 1)
