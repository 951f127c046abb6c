"""Exercises of the tutorial notebooks: checks, hints and solutions (kept apart so a learner does not see them).

In a notebook::

    import exercises as ex
    answer = None          # the learner replaces None with their own code
    ex.check("00.1", answer, tut)

``check`` grades the answer with checks that hold on the local emulator and on Model Studio
alike (what was called and how, never the exact wording of a model's reply). An answer left as
``None`` is "not attempted yet". ``ex.hint(id)`` gives a hint, ``ex.solution(id)`` shows the
solution's code. With ``QWEN_NB_TUTORIAL_SOLUTIONS=1`` in the environment (the notebook tests
set it), an answer left as ``None`` is replaced by the shipped solution, which must pass.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOLUTIONS_VAR = "QWEN_NB_TUTORIAL_SOLUTIONS"


class Wrong(Exception):
    """The answer does not do what the exercise asks (the message says what is missing)."""


@dataclass
class Exercise:
    id: str
    task: str
    hint: str
    solve: Callable[..., Any]
    grade: Callable[..., str]


EXERCISES: dict[str, Exercise] = {}
#: exercise id -> whether its last check passed
passed: dict[str, bool] = {}


def exercise(id: str, task: str, hint: str, solve: Callable[..., Any]) -> Callable[[Callable[..., str]], Any]:
    def register(grade: Callable[..., str]) -> Callable[..., str]:
        EXERCISES[id] = Exercise(id, task, hint, solve, grade)
        return grade
    return register


def _need(cond: Any, why: str) -> None:
    if not cond:
        raise Wrong(why)


def _result(value: Any, name: str = "the answer") -> Any:
    from qwen_nb import ChatResult

    _need(isinstance(value, ChatResult), f"{name} should be the ChatResult a q.chat(...) call returns, "
          f"got {type(value).__name__}")
    return value


# -- 00 quickstart ---------------------------------------------------------------------------------

def _s00_1(tut: Any) -> Any:
    return tut.s.chat("What is the capital of France?", system="Answer in one sentence.", api="dashscope",
                      profile=tut.profile.name)


@exercise("00.1", "Ask 'What is the capital of France?' through the native DashScope endpoint, with a system "
          "prompt asking for one sentence.",
          "q.chat(prompt, system=..., api=...) — the native endpoint is api=\"dashscope\".", _s00_1)
def _g00_1(answer: Any, tut: Any) -> str:
    r = _result(answer)
    _need(r.api == "dashscope", f"the call went through api={r.api!r}; use api=\"dashscope\"")
    _need(r.text.strip(), "the answer is empty")
    return f"answered through the native endpoint by {r.model} ({r.usage.line()})"


def _s00_2(tut: Any) -> Any:
    return tut.s.chat("Write a haiku about the sea", max_tokens=20, profile=tut.profile.name)


@exercise("00.2", "Ask for a haiku about the sea, but let the model write at most 20 tokens.",
          "max_tokens caps the output tokens; the result's .usage.output_tokens says how many were used.", _s00_2)
def _g00_2(answer: Any, tut: Any) -> str:
    r = _result(answer)
    _need(0 < r.usage.output_tokens <= 20, f"{r.usage.output_tokens} output tokens; pass max_tokens=20")
    return f"{r.usage.output_tokens} output tokens (finish reason {r.finish_reason!r})"


# -- 01 sub-workspaces -----------------------------------------------------------------------------

def _s01_1(tut: Any) -> Any:
    return ("QWEN_NB_MARKETING_API_KEY=sk-placeholder0001\n"
            "QWEN_NB_MARKETING_REGION=ap-southeast-1\n"
            "QWEN_NB_MARKETING_WORKSPACE=llm-marketing\n"
            "QWEN_NB_MARKETING_MODELS=qwen-plus,qwen-flash\n")


@exercise("01.1", "Write the .env lines (as one string) for a sub-workspace profile named 'marketing' in "
          "Singapore, workspace llm-marketing, granted qwen-plus and qwen-flash (use a placeholder key).",
          "QWEN_NB_<NAME>_API_KEY, _REGION, _WORKSPACE, _MODELS; <NAME> in upper case.", _s01_1)
def _g01_1(answer: Any, tut: Any) -> str:
    from qwen_nb import load_profiles

    _need(isinstance(answer, str), "the answer should be the text of the .env lines")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".env"
        path.write_text(answer, encoding="utf-8")
        parsed = load_profiles(env={}, dotenv_path=path)
    _need("marketing" in parsed, f"no profile 'marketing' (found: {', '.join(parsed) or 'none'})")
    p = parsed["marketing"]
    _need(p.region == "ap-southeast-1", f"its region is {p.region}, not ap-southeast-1")
    _need(p.workspace == "llm-marketing", f"its workspace is {p.workspace}, not llm-marketing")
    _need(set(p.models or ()) == {"qwen-plus", "qwen-flash"}, f"its models are {p.models}")
    return f"profile 'marketing': {p.region}, {p.workspace}, models {', '.join(p.models or ())}"


def _s01_2(tut: Any) -> Any:
    return {p.name: tut.base_url(p, "openai") for p in tut.s.profiles()}


@exercise("01.2", "Make a dict: profile name -> the OpenAI-compatible base URL that profile's calls go to.",
          "tut.base_url(profile, \"openai\") for each profile in tut.s.profiles().", _s01_2)
def _g01_2(answer: Any, tut: Any) -> str:
    _need(isinstance(answer, dict), "the answer should be a dict")
    for p in tut.s.profiles():
        _need(answer.get(p.name) == tut.base_url(p, "openai"), f"profile {p.name!r}: expected its base URL")
    return f"{len(answer)} profiles; workspace hosts where a workspace id is set"


# -- 02 OpenAI-compatible ----------------------------------------------------------------------------

def _s02_1(tut: Any) -> Any:
    from openai import OpenAI

    client = OpenAI(api_key=tut.profile.key, base_url=tut.base_url(tut.profile, "openai"))
    return client.chat.completions.create(model="qwen-plus", max_tokens=10,
                                          messages=[{"role": "user", "content": "Tell me a joke"}])


@exercise("02.1", "With the openai SDK by hand (no qwen-nb), ask qwen-plus 'Tell me a joke' with at most 10 "
          "output tokens; keep the SDK's completion object.",
          "client.chat.completions.create(model=..., messages=[...], max_tokens=10)", _s02_1)
def _g02_1(answer: Any, tut: Any) -> str:
    _need(getattr(answer, "object", None) == "chat.completion", "expected the openai SDK's ChatCompletion object")
    _need(answer.usage and 0 < answer.usage.completion_tokens <= 10,
          f"{getattr(answer.usage, 'completion_tokens', None)} completion tokens; pass max_tokens=10")
    return f"{answer.usage.completion_tokens} completion tokens, finish reason {answer.choices[0].finish_reason!r}"


def _s02_2(tut: Any) -> Any:
    from openai import OpenAI

    client = OpenAI(api_key=tut.profile.key, base_url=tut.base_url(tut.profile, "openai"))
    text, total = "", 0
    for chunk in client.chat.completions.create(model="qwen-plus", stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "Count from 1 to 10"}]):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            total = chunk.usage.total_tokens
    return text, total


@exercise("02.2", "Stream 'Count from 1 to 10' with the openai SDK; return (the whole text, the total tokens "
          "from the usage chunk).",
          "stream=True and stream_options={\"include_usage\": True}; the last chunk has no choices, only usage.",
          _s02_2)
def _g02_2(answer: Any, tut: Any) -> str:
    _need(isinstance(answer, tuple) and len(answer) == 2, "return a pair: (text, total_tokens)")
    text, total = answer
    _need(isinstance(text, str) and text.strip(), "the streamed text is empty")
    _need(isinstance(total, int) and total > 0, "no token count: did you ask for include_usage?")
    return f"{len(text)} characters streamed, {total} tokens"


# -- 03 native -----------------------------------------------------------------------------------------

def _s03_1(tut: Any) -> Any:
    from dashscope import Generation

    return Generation.call(api_key=tut.profile.key, base_address=tut.base_url(tut.profile, "dashscope"),
                           model="qwen-plus", messages=[{"role": "user", "content": "Tell me a joke"}],
                           result_format="message", max_tokens=15)


@exercise("03.1", "With dashscope.Generation.call (base_address per call), ask qwen-plus 'Tell me a joke' with "
          "result_format='message' and at most 15 output tokens; keep the response.",
          "Generation.call(api_key=..., base_address=..., model=..., messages=[...], result_format=\"message\", "
          "max_tokens=15)", _s03_1)
def _g03_1(answer: Any, tut: Any) -> str:
    _need(getattr(answer, "status_code", None) == 200, f"status {getattr(answer, 'status_code', None)}: "
          f"{getattr(answer, 'code', '')} {getattr(answer, 'message', '')}")
    _need(answer.output.choices, "no choices: did you pass result_format='message'?")
    _need(0 < answer.usage.output_tokens <= 15, f"{answer.usage.output_tokens} output tokens; pass max_tokens=15")
    return f"HTTP 200, {answer.usage.output_tokens} output tokens"


def _s03_2(tut: Any) -> Any:
    return {"model": "qwen-plus",
            "input": {"messages": [{"role": "user", "content": "What is 2+2"}]},
            "parameters": {"result_format": "message", "max_tokens": 20}}


@exercise("03.2", "Write the native request body (a dict) that asks qwen-plus 'What is 2+2' with "
          "result_format 'message' and max_tokens 20; the check sends it.",
          "Messages go under input, options under parameters.", _s03_2)
def _g03_2(answer: Any, tut: Any) -> str:
    import httpx

    _need(isinstance(answer, dict), "the body should be a dict")
    _need(isinstance(answer.get("input", {}).get("messages"), list), "put the messages under body['input']")
    _need(answer.get("parameters", {}).get("result_format") == "message", "parameters.result_format: 'message'")
    url = tut.base_url(tut.profile, "dashscope") + "/services/aigc/text-generation/generation"
    reply = httpx.post(url, json=answer, headers={"Authorization": f"Bearer {tut.profile.key}"}, timeout=60)
    _need(reply.status_code == 200, f"the service answered HTTP {reply.status_code}: {reply.text[:200]}")
    out = reply.json()
    return f"HTTP 200, finish reason {out['output']['choices'][0]['finish_reason']!r}, usage {out['usage']}"


# -- 04 errors --------------------------------------------------------------------------------------------

def _s04_1(tut: Any) -> Any:
    from qwen_nb import errors

    def safe_chat(prompt: str, model: str, profile_names: list[str]) -> Any:
        for name in profile_names:
            try:
                return tut.s.chat(prompt, model=model, profile=name)
            except errors.ModelNotGrantedError:
                continue
        return None

    return safe_chat


@exercise("04.1", "Write safe_chat(prompt, model, profile_names): the first answer a profile may give, trying "
          "them in order; None if no profile was granted the model (no exception).",
          "Catch errors.ModelNotGrantedError only: other errors should still surface.", _s04_1)
def _g04_1(answer: Any, tut: Any) -> str:
    _need(callable(answer), "the answer should be the function safe_chat")
    _need(answer("Say hello", "qwen-plus", []) is None, "with no profile it should return None")
    r = _result(answer("Say hello", "qwen-plus", [tut.profile.name]), "safe_chat(...)")
    return f"{r.profile} answered with {r.model}"


def _s04_2(tut: Any) -> Any:
    from qwen_nb import facts

    codes = ["Throttling.RateQuota", "Arrearage", "InternalError", "CommodityNotPurchased", "Model.AccessDenied"]
    retried = {row.native for row in facts.ERRORS.values() if row.retryable}
    return [c for c in codes if c in retried]


@exercise("04.2", "Of these codes, which should a program retry (later)? Throttling.RateQuota, Arrearage, "
          "InternalError, CommodityNotPurchased, Model.AccessDenied — a list.",
          "Retry when the service means 'try again': rates and server faults; never bills, grants or "
          "subscriptions (see the cheat sheet's 'retried' column).", _s04_2)
def _g04_2(answer: Any, tut: Any) -> str:
    _need(isinstance(answer, (list, tuple, set)), "the answer should be a list of codes")
    want = set(_s04_2(tut))
    _need(set(answer) == want, f"not quite: {sorted(set(answer) ^ want)} belong on the other side")
    return ", ".join(sorted(want)) + " are worth retrying; the others need a person to act"


def _s04_3(tut: Any) -> Any:
    from qwen_nb import InputError

    try:
        tut.s.chat("Say hello", temperature=5, profile=tut.profile.name)
    except InputError as err:
        return err
    return None


@exercise("04.3", "Make a call with temperature=5, catch the error qwen-nb raises before sending anything, and "
          "keep the error object.", "try: ... except q.InputError as err: ...", _s04_3)
def _g04_3(answer: Any, tut: Any) -> str:
    from qwen_nb import InputError

    _need(isinstance(answer, InputError), f"expected an InputError, got {type(answer).__name__}")
    return f"InputError: {answer.message[:80]}"


# -- 05 costs ----------------------------------------------------------------------------------------------

def _s05_1(tut: Any, start: float) -> Any:
    import qwen_nb as q

    return q.usage(since=start, by="profile").totals.calls


@exercise("05.1", "How many calls has this notebook made so far? Take the number from the usage report.",
          "q.usage(since=start) — its .totals row has the calls.", _s05_1)
def _g05_1(answer: Any, tut: Any, start: float) -> str:
    import qwen_nb as q

    want = q.usage(since=start).totals.calls
    _need(answer == want, f"the report says {want}, you have {answer!r}")
    return f"{want} calls since the start of this notebook"


def _s05_2(tut: Any, start: float) -> Any:
    import qwen_nb as q

    return q.usage(since=start, by="model").to_csv()


@exercise("05.2", "Export this notebook's usage per model as CSV text (for a spreadsheet).",
          "q.usage(since=start, by=\"model\").to_csv()", _s05_2)
def _g05_2(answer: Any, tut: Any, start: float) -> str:
    _need(isinstance(answer, str) and answer.count("\n") >= 1, "expected CSV text with a header and rows")
    header = answer.splitlines()[0]
    _need("calls" in header, f"unexpected header {header!r}")
    return f"{answer.count(chr(10))} lines of CSV, header: {header}"


# -- 06 widgets --------------------------------------------------------------------------------------------

def _s06_1(tut: Any, pg: Any) -> Any:
    pg.model.wait()
    pg.model.value = "qwen-flash" if "qwen-flash" in [v for _, v in pg.model.options] else pg.model.value
    pg.send("Tell me a joke")
    pg.wait()
    return pg.last_result


@exercise("06.1", "Drive the Playground from code: pick the model qwen-flash, send 'Tell me a joke', wait, and "
          "keep pg.last_result.", "pg.model.value = ...; pg.send(...); pg.wait()", _s06_1)
def _g06_1(answer: Any, tut: Any, pg: Any) -> str:
    r = _result(answer, "pg.last_result")
    _need(r.model == pg.model.value, "the result is not from the model picked")
    return f"{r.model} answered in the Playground ({r.usage.line()})"


def _s06_2(tut: Any, pg: Any) -> Any:
    pg.code_language.value = "curl"
    return pg.code_text("Who are you?")


@exercise("06.2", "Get the curl command for the Playground's current choices (what Show code shows).",
          "pg.code_language.value = \"curl\"; pg.code_text(prompt)", _s06_2)
def _g06_2(answer: Any, tut: Any, pg: Any) -> str:
    _need(isinstance(answer, str) and "curl" in answer, "expected the text of a curl command")
    _need("Authorization: Bearer $" in answer and "_API_KEY" in answer,
          "the command should read the key from an environment variable such as $DASHSCOPE_API_KEY")
    return "a curl command that reads the key from an environment variable, never from the notebook"


# -- 07 beyond -----------------------------------------------------------------------------------------------

def _s07_1(tut: Any) -> Any:
    r = tut.s.chat("Return a JSON object with the keys city and country for the capital of France.",
                   response_format={"type": "json_object"}, profile=tut.profile.name)
    return r.json()


@exercise("07.1", "Ask for a JSON object with the keys city and country (for the capital of France) and parse it.",
          "response_format={\"type\": \"json_object\"}, mention JSON in the prompt, then .json()", _s07_1)
def _g07_1(answer: Any, tut: Any) -> str:
    _need(isinstance(answer, dict), f"expected the parsed dict, got {type(answer).__name__}")
    _need({"city", "country"} <= set(answer), f"keys {sorted(answer)}: ask for city and country by name")
    return f"keys: {', '.join(sorted(answer))}"


def _s07_2(tut: Any) -> Any:
    return tut.s.chat_many(["Say hello", "What is 2+2", "Tell me a joke"], concurrency=2, progress=False,
                           profile=tut.profile.name)


@exercise("07.2", "Run three prompts at once, two at a time, without a progress bar; keep the list of results.",
          "chat_many(prompts, concurrency=2, progress=False)", _s07_2)
def _g07_2(answer: Any, tut: Any) -> str:
    _need(isinstance(answer, list) and len(answer) == 3, "expected a list of three results")
    for r in answer:
        _result(r, "each item")
    return "three answers, in input order"


def _s07_3(tut: Any) -> Any:
    tools = [{"type": "function", "function": {
        "name": "get_time", "description": "Current local time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    return tut.s.chat("What time is it in Tokyo right now? Use the tool.", tools=tools, profile=tut.profile.name)


@exercise("07.3", "Describe a tool get_time(city) and ask 'What time is it in Tokyo right now?': keep the result "
          "whose tool_calls ask for get_time.",
          "tools=[{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {...}}}]", _s07_3)
def _g07_3(answer: Any, tut: Any) -> str:
    import json

    r = _result(answer)
    _need(r.tool_calls, "no tool call: describe the tool so that it matches the question")
    call = r.tool_calls[0]
    _need(call.name == "get_time", f"the model asked for {call.name!r}")
    return f"the model asks for get_time({json.loads(call.arguments)})"


# -- the notebook API -------------------------------------------------------------------------------------------

def _get(id: str) -> Exercise:
    if id not in EXERCISES:
        raise KeyError(f"No exercise {id!r}; known: {', '.join(EXERCISES)}")
    return EXERCISES[id]


def task(id: str) -> str:
    """What exercise ``id`` asks."""
    return _get(id).task


def hint(id: str) -> None:
    """Print a hint for exercise ``id``."""
    print(f"Hint for {id}: {_get(id).hint}")


def solution(id: str) -> None:
    """Print the shipped solution of exercise ``id``."""
    print(inspect.getsource(_get(id).solve))


def check(id: str, answer: Any, tut: Any, **context: Any) -> None:
    """Grade ``answer`` to exercise ``id`` and print the verdict (``ex.passed[id]`` keeps it).

    ``None`` means not attempted; with ``QWEN_NB_TUTORIAL_SOLUTIONS=1`` the shipped solution is
    graded instead, and must pass (AssertionError otherwise).
    """
    ex = _get(id)
    shipped = False
    if answer is None:
        if os.environ.get(SOLUTIONS_VAR) != "1":
            print(f"Exercise {id}: not attempted yet. {ex.task}\n"
                  f"Replace None above with your code, then run this cell again. "
                  f"Stuck? ex.hint({id!r}) · ex.solution({id!r})")
            passed[id] = False
            return
        answer, shipped = ex.solve(tut, **context), True
        print(f"Exercise {id}: grading the shipped solution ({SOLUTIONS_VAR}=1).")
    try:
        detail = ex.grade(answer, tut, **context)
    except Wrong as why:
        if shipped:
            raise AssertionError(f"the shipped solution of exercise {id} fails: {why}") from None
        print(f"Exercise {id}: not yet - {why}. Try again, or ex.hint({id!r}).")
        passed[id] = False
        return
    print(f"Exercise {id}: correct - {detail}.")
    passed[id] = True
