"""IPython magics: ``%%qwen`` (a cell as the prompt), ``%qwen_profiles``, ``%qwen_usage``.

``%load_ext qwen_nb`` registers them. They are thin: the work is done by the
default session (``qwen_nb.default_session()``); errors are shown as
the guided ``QwenNbError`` message, bad options as the usage line, never a traceback.
"""

from __future__ import annotations

import html
import io
import re
import shlex
import string
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.display import display

from qwen_nb import facts
from qwen_nb.errors import InputError, QwenNbError

if TYPE_CHECKING:
    from qwen_nb.session import Session

#: display pushes per second while a ``--stream`` answer grows
STREAM_RATE = 10.0

# {name}, {name.attr}, {name[0]}, with optional !r / !s / !a and :format; {{ and }} are escapes.
_FIELD = re.compile(
    r"\{\{|\}\}|\{(?P<field>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]{}]*\])*)"
    r"(?:!(?P<conv>[rsa]))?(?::(?P<spec>[^{}]*))?\}"
)
_FORMATTER = string.Formatter()


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` (also ``{obj.attr}``, ``{seq[0]}``, ``{x:.2f}``) with values from ``namespace``.

    ``{{`` and ``}}`` stand for literal braces. Braces that do not hold a name
    (``function() { return 1; }``, JSON) are left as they are.
    """

    def sub(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        field = m.group("field")
        try:
            value, _ = _FORMATTER.get_field(field, (), namespace)
        except KeyError as e:
            name = field.split(".")[0].split("[")[0]
            if name not in namespace:
                raise InputError(
                    f"{{{field}}} in the prompt names {name!r}, which is not defined in the notebook.",
                    fix=f"Define {name} in a cell above, or write {{{{{field}}}}} to send the braces literally.",
                ) from None
            raise InputError(f"{{{field}}} in the prompt: no item {e}.") from None
        except (AttributeError, IndexError, TypeError) as e:
            raise InputError(f"{{{field}}} in the prompt could not be read: {e}.") from None
        value = _FORMATTER.convert_field(value, m.group("conv"))
        try:
            return _FORMATTER.format_field(value, m.group("spec") or "")
        except (ValueError, TypeError) as e:
            raise InputError(f"{{{field}:{m.group('spec')}}} in the prompt: {e}.") from None

    return _FIELD.sub(sub, text)


def _partial_markdown(text: str, reasoning: str, note: str = "") -> str:
    parts = []
    if reasoning:
        quoted = "\n".join("> " + line for line in reasoning.splitlines())
        parts.append(f"<details{' open' if not text else ''}><summary>Thinking</summary>\n\n{quoted}\n\n</details>\n")
    parts.append(text or "*…*")
    if note:
        parts.append(f"\n\n{note}")
    return "\n".join(parts)


def _usage_line(func: Callable) -> str:
    parser = func.parser  # type: ignore[attr-defined]  # magic_arguments adds .parser
    text = parser.format_usage().strip().removeprefix("::").strip()
    text = " ".join(text.split())  # IPython's RST layout, as one line
    name = text.split()[0] if text else "%qwen"
    return f"usage: {text}\n(see {name}? for the options)"


def _split_line(line: str, takes_value: set[str]) -> tuple[list[str], str]:
    """The options of a line magic (POSIX quoting) and the prompt after them, as typed.

    Reading stops at the first word that is neither an option nor an option's value: the rest
    of the line is the prompt, apostrophes and question marks included (``What's RAG?``).
    """
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    argv: list[str] = []
    expect = False
    while True:
        start = stream.tell()
        try:
            token = lexer.get_token()
        except ValueError as e:  # an open quote
            if expect or line[start:].lstrip().startswith("-"):
                raise UsageError(f"{e} in {line[start:].strip()!r}: close the quote.") from None
            return argv, line[start:].strip()
        if token is None or token == lexer.eof:
            return argv, ""
        if expect:
            argv.append(token)
            expect = False
        elif token.startswith("-") and token != "-":
            argv.append(token)
            expect = token.split("=", 1)[0] in takes_value and "=" not in token
        else:
            return argv, line[start:].strip()


def _unquote(prompt: str) -> str:
    """``"Who are you?"`` -> ``Who are you?``: one quoted string is taken as its content."""
    if prompt[:1] in ("'", '"'):
        try:
            words = shlex.split(prompt)
        except ValueError:
            return prompt
        if len(words) == 1:
            return words[0]
    return prompt


def _parse(func: Callable, line: str, *, line_magic: bool = False) -> Any:
    """Parse magic options (POSIX quoting: ``-s "Be brief."``); on a bad option print the error
    and the usage line, return None. For a line magic the words after the options are the prompt."""
    parser = func.parser  # type: ignore[attr-defined]  # magic_arguments adds .parser
    try:
        if line_magic:
            takes_value = {s for a in parser._actions if a.option_strings and a.nargs != 0 for s in a.option_strings}
            argv, prompt = _split_line(line, takes_value)
            args = parser.parse_args(argv)
            args.prompt = [_unquote(prompt)] if prompt else []
            return args
        try:
            argv = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"{e} in {line.strip()!r}: close the quote.") from None
        return parser.parse_args(argv)
    except UsageError as e:
        print(f"UsageError: {e}\n{_usage_line(func)}", file=sys.stderr)
        return None


#: the live display of a streamed answer before its first token and after its last
_LIVE_EMPTY = {"text/plain": ""}


def _bundle(markdown: str, plain: str) -> dict[str, str]:
    return {"text/markdown": markdown, "text/plain": plain}


def _error_bundle(err: QwenNbError) -> dict[str, str]:
    """The short error card (HTML), its Markdown and the full text: never a traceback."""
    from qwen_nb._cards import error_card_html

    return {"text/html": error_card_html(err), **_bundle(err._repr_markdown_(), str(err))}


def _show_error(err: QwenNbError) -> None:
    """The guided message (what went wrong, how to fix it) as a short card, not a traceback."""
    display(_error_bundle(err), raw=True)


@magics_class
class QwenMagics(Magics):
    """``%%qwen``, ``%qwen_profiles``, ``%qwen_usage``."""

    def _session(self) -> Any:
        from qwen_nb._default import default_session

        return default_session()

    def _user_ns(self) -> dict[str, Any]:
        """The notebook's variables (for ``{var}`` in a prompt and ``-o name``)."""
        return self.shell.user_ns if self.shell is not None else {}

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("-m", "--model", help="model id, e.g. qwen-plus (default: the session's)")
    @magic_arguments.argument("-p", "--profile", help="profile (workspace) name (default: the session's)")
    @magic_arguments.argument("--api", choices=facts.API_NAMES, help="protocol (default: the session's)")
    @magic_arguments.argument("--stream", action="store_true", help="show the answer as it grows")
    @magic_arguments.argument("--thinking", action="store_true", help="turn thinking on (enable_thinking)")
    @magic_arguments.argument("--no-thinking", action="store_true", help="turn thinking off")
    @magic_arguments.argument("-s", "--system", help="system prompt (quote it)")
    @magic_arguments.argument("-t", "--temperature", type=float, help="sampling temperature")
    @magic_arguments.argument("--max-tokens", type=int, help="cap on output tokens")
    @magic_arguments.argument("-o", "--output", metavar="VAR", help="store the ChatResult in this variable")
    @magic_arguments.argument("--raw", action="store_true", help="send the text as is: no {name} interpolation")
    @magic_arguments.argument("prompt", nargs="*", help="(line magic) the prompt; in a cell, the cell body")
    @line_cell_magic
    def qwen(self, line: str, cell: str | None = None) -> None:
        """Send the cell (or the rest of the line) to a Qwen model; show the answer as Markdown.

        ``{name}`` in the prompt is replaced with the notebook variable ``name``; ``{{`` / ``}}``
        are literal braces.
        """
        args = _parse(self.qwen, line, line_magic=cell is None)
        if args is None:
            return None
        text = cell if cell is not None else " ".join(args.prompt)
        if cell is not None and args.prompt:
            print(
                f"UsageError: unexpected words on the %%qwen line: {' '.join(args.prompt)!r} "
                "(the prompt is the cell body; quote an option's value that has spaces: -s \"Be brief.\")\n"
                + _usage_line(self.qwen),
                file=sys.stderr,
            )
            return None
        try:
            if args.output is not None and not args.output.isidentifier():
                raise InputError(f"-o {args.output!r} is not a valid variable name.", fix="E.g. -o answer")
            if args.thinking and args.no_thinking:
                raise InputError("--thinking and --no-thinking contradict each other.", fix="Use one of them.")
            prompt = text if args.raw else interpolate(text, self._user_ns())
            if not prompt.strip():
                raise InputError("The prompt is empty.", fix="Write the prompt in the cell below %%qwen.")
            params: dict[str, Any] = {}
            if args.thinking or args.no_thinking:
                params["enable_thinking"] = bool(args.thinking)
            for name in ("system", "temperature", "max_tokens"):
                if getattr(args, name) is not None:
                    params[name] = getattr(args, name)
            session = self._session()
            call = dict(model=args.model, profile=args.profile, api=args.api, **params)
            result = self._stream(session, prompt, call) if args.stream else session.chat(prompt, **call)
        except QwenNbError as err:
            _show_error(err)
            return None
        if result is None:
            return None
        if not args.stream:
            display(result)
        if args.output:
            self._user_ns()[args.output] = result
        return None

    def _stream(self, session: Session, prompt: str, call: dict[str, Any]) -> Any:
        """Stream into a live display, coalesced to ``STREAM_RATE`` updates a second; the result, or None.

        The live display starts and ends empty; the final answer (or error) is then shown as an
        ordinary output. A saved notebook therefore holds what a re-run produces in order, which
        is what ``nbval`` compares (it ignores display updates).
        """
        from qwen_nb.coalesce import Coalescer

        stream = session.stream_chat(prompt, **call)
        handle = display(_LIVE_EMPTY, raw=True, display_id=True)
        throttle = Coalescer(STREAM_RATE)
        text = reasoning = ""
        try:
            for delta in stream:
                text += delta.content
                reasoning += delta.reasoning
                throttle.mark()
                if throttle.try_flush():
                    handle.update(_bundle(_partial_markdown(text, reasoning), text), raw=True)
        except KeyboardInterrupt:
            stream.close()
            handle.update(_LIVE_EMPTY, raw=True)
            display(_bundle(_partial_markdown(text, reasoning, "*(interrupted)*"), text + " (interrupted)"), raw=True)
            return None
        except QwenNbError as err:
            partial = getattr(err, "partial", "") or text
            handle.update(_LIVE_EMPTY, raw=True)
            if partial or reasoning:  # what arrived before the error stays, as a Markdown output of its own
                display(_bundle(_partial_markdown(partial, reasoning), partial), raw=True)
            _show_error(err)
            return None
        result = stream.result
        handle.update(_LIVE_EMPTY, raw=True)
        display(result)
        return result

    @line_magic
    def qwen_profiles(self, line: str = "") -> None:
        """Show the session's profiles (workspaces) with masked keys."""
        if line.strip():
            print(f"UsageError: %qwen_profiles takes no arguments, got {line.strip()!r}", file=sys.stderr)
            return None
        try:
            from qwen_nb._profiles import ProfileTable

            session = self._session()
            table = ProfileTable(session.profiles())
            default = session.get_profile().name
        except QwenNbError as err:
            _show_error(err)
            return None
        display(table)
        where = " · the local emulator's demo workspaces (no real key configured)" if session.on_emulator else ""
        display(
            _bundle(f"<small>default profile: **{html.escape(default)}**{where}</small>", f"default: {default}"),
            raw=True,
        )
        return None

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("--since", help="only calls since, e.g. 'today', '7d', '2025-01-31'")
    @magic_arguments.argument(
        "--by", default="workspace", choices=("workspace", "profile", "model", "day"), help="group rows by"
    )
    @line_magic
    def qwen_usage(self, line: str = "") -> None:
        """Usage and cost of the session's calls, per workspace (or profile, model, day)."""
        args = _parse(self.qwen_usage, line)
        if args is None:
            return None
        try:
            from qwen_nb._default import usage

            report = usage(since=args.since, by=args.by)
        except QwenNbError as err:
            _show_error(err)
            return None
        display(report)
        return None


_QWEN_LINE = re.compile(r"^(?P<indent>[ \t]*)%qwen[ \t]+(?P<rest>\S.*?)[ \t]*$")


def qwen_help_end(lines: list[str]) -> list[str]:
    """Input transformer: ``%qwen Who are you?`` is a question, not IPython's ``?`` help.

    IPython reads a line ending in ``?`` as a request for help on it (``HelpEnd``), which would
    swallow the prompt. This runs before that (a cleanup transform) and turns such a line into
    the plain call ``get_ipython().run_line_magic('qwen', ...)``. ``%qwen?`` alone still shows
    the help; ``%%qwen`` cells are left to the cell magic.
    """
    if not lines or lines[0].lstrip().startswith("%%"):
        return lines
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        m = _QWEN_LINE.match(body)
        if m and body.endswith("?"):
            end = line[len(body):]
            line = f"{m.group('indent')}get_ipython().run_line_magic('qwen', {m.group('rest')!r}){end}"
        out.append(line)
    return out


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and the ``%qwen ...?`` transformer (called by ``%load_ext qwen_nb``)."""
    ipython.register_magics(QwenMagics)
    cleanup = getattr(ipython, "input_transformers_cleanup", None)
    if cleanup is not None and qwen_help_end not in cleanup:
        cleanup.append(qwen_help_end)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the input transformer; the session lives on for the plain-Python API."""
    cleanup = getattr(ipython, "input_transformers_cleanup", None)
    if cleanup is not None and qwen_help_end in cleanup:
        cleanup.remove(qwen_help_end)
