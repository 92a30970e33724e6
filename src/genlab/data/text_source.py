"""The text a language model learns from, read a chunk at a time so that no corpus is held whole:
local UTF-8 files (a path or a glob, in sorted order), or online a Hugging Face dataset (which
`datasets` hands over in memory).

A source says what it is (`digest`, the hash its token caches are keyed by; files are hashed
as they stream) and yields its text as chunks, with `END_OF_FILE` between files (where the
end-of-text token goes). Chunks end where a line ends between two non-space characters (or, in
a file without such lines, at a space between words), so a tokenizer that splits text at
whitespace (GPT-2's pre-tokenizer) reads the same pieces chunk by chunk as in one go.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from genlab.errors import GenlabError

# About 1 MB of text per chunk: tokenizing work for one process, and what is held at a time.
CHUNK_CHARS = 1 << 20
# Between two files of a glob: the datamodule writes the end-of-text token there.
END_OF_FILE = None
_READ_BYTES = 1 << 22
# A chunk with no good place to end is cut anyway once it is this many times CHUNK_CHARS.
_LONGEST = 4


class TextFiles:
    """`pattern`: a file or a glob of files. `url`: where a missing file can be downloaded
    (only for the hint when it is missing)."""

    def __init__(self, pattern: str, url: str | None = None):
        self.pattern, self.url = pattern, url
        self._digest: str | None = None

    def files(self) -> list[str]:
        if Path(self.pattern).is_dir():
            raise GenlabError(
                f"data.path={self.pattern} is a folder: give a text file, or a glob of them "
                f"(data.path='{Path(self.pattern) / '*.txt'}')"
            )
        files = sorted(f for f in glob.glob(self.pattern) if Path(f).is_file())  # not folders
        if not files:
            hint = " (or set data.url to download it)" if not self.url else ""
            raise GenlabError(f"data.path={self.pattern}: no such file{hint}")
        return files

    @property
    def size(self) -> int:
        """Bytes of text, for progress bars."""
        return sum(Path(name).stat().st_size for name in self.files())

    def digest(self) -> str:
        """A hash of the files' bytes (and where each ends), streamed; each is checked to be
        UTF-8 with some text in it on the way (one line naming the file otherwise)."""
        if self._digest is None:
            digest = hashlib.sha256()
            for name in self.files():
                digest.update(f"{Path(name).stat().st_size}:".encode())
                _hash_checked(Path(name), digest)
            self._digest = digest.hexdigest()[:16]
        return self._digest

    def chunks(self, chunk_chars: int = CHUNK_CHARS) -> Iterator[str | None]:
        for i, name in enumerate(self.files()):
            if i:
                yield END_OF_FILE
            with open(name, encoding="utf-8") as f:
                yield from _chunks(f, chunk_chars)


class HubText:
    """A Hugging Face dataset's train, validation and test text, rows joined by newlines."""

    def __init__(self, dataset: str, config: str | None = None):
        self.dataset, self.config = dataset, config
        self._text: str | None = None
        self._digest: str | None = None

    def text(self) -> str:
        if self._text is None:
            try:
                from datasets import load_dataset
            except ImportError:
                raise GenlabError(
                    "data.dataset needs the `datasets` package: pip install datasets"
                ) from None
            try:
                splits = load_dataset(self.dataset, self.config)
            except Exception as err:  # hub, network and format errors all end here
                raise GenlabError(f"cannot load data.dataset={self.dataset}: {err}") from None
            self._text = "\n".join(
                row["text"]
                for name in ("train", "validation", "test")
                if name in splits
                for row in splits[name]
            )
        return self._text

    @property
    def size(self) -> int:
        return len(self.text())

    def digest(self) -> str:
        if self._digest is None:
            self._digest = hashlib.sha256(self.text().encode("utf-8")).hexdigest()[:16]
        return self._digest

    def chunks(self, chunk_chars: int = CHUNK_CHARS) -> Iterator[str | None]:
        yield from _chunks(io.StringIO(self.text()), chunk_chars)


def _hash_checked(path: Path, digest) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, has_text = 0, False
    with path.open("rb") as f:
        while block := f.read(_READ_BYTES):
            digest.update(block)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as err:
                byte = offset - pending + err.start
                raise GenlabError(f"{path} is not UTF-8 text (byte {byte}); convert it") from None
            has_text = has_text or bool(text.strip())
            offset += len(block)
    pending = len(decoder.getstate()[0])
    if pending:  # the file ends inside a character
        raise GenlabError(f"{path} is not UTF-8 text (byte {offset - pending}); convert it")
    if not has_text:
        raise GenlabError(f"{path} is empty: give a file with text in it")


def _chunks(stream: TextIO, chunk_chars: int) -> Iterator[str]:
    """The stream's text in pieces of about `chunk_chars` characters, cut where `_cut` says."""
    buffer = ""
    while block := stream.read(chunk_chars):
        buffer += block
        cut = _cut(buffer)
        if not cut and len(buffer) >= _LONGEST * chunk_chars:
            cut = len(buffer)
        if cut:
            yield buffer[:cut]
            buffer = buffer[cut:]
    if buffer:
        yield buffer


def _cut(buffer: str) -> int:
    """Where a chunk can end so that whitespace-splitting tokenizers see the same pieces: after
    the last newline with non-space characters on both sides, else before the last such space;
    0 when there is none (read on)."""
    for mark, after in (("\n", 1), (" ", 0)):
        end = len(buffer) - 1  # the mark needs a character after it
        while (i := buffer.rfind(mark, 1, end)) > 0:
            if not buffer[i - 1].isspace() and not buffer[i + 1].isspace():
                return i + after
            end = i
    return 0
