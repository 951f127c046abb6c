"""End to end: the Playground in JupyterLab 4 and Notebook 7, driven in headless Chromium against the emulator.

Runs when Debian's Chromium (/usr/bin/chromium), Playwright, JupyterLab and Notebook are installed
(CI installs them); skipped with the reason otherwise (see tests/browser.py). One server per
frontend; one walk through the Playground per frontend: two turns shown in order, Code beside
an answer, a stopped turn with its usage, a not-granted model and its "Use profile" action,
a Responses API turn with a tool step above its answer, then at 800 px nothing overflows, and in the
dark theme the error, ✗ and tool-step texts keep 4.5:1.
Screenshots of each step go to tests/artifacts/ (1400 and 800 px, light and dark).
"""

from __future__ import annotations

import re

import pytest
from browser import (
    ARTIFACTS,
    browser_skip,
    choose,
    contrast,
    jupyter_server,
    launch,
    notebook_url,
    open_notebook,
    overflows,
    run_all,
    set_theme,
    shot,
    write_notebook,
)

pytestmark = browser_skip()

PROMPT_BOX = "textarea[placeholder^='Ask Qwen']"
SEND = "button.jupyter-button:has-text('Send')"


@pytest.fixture(scope="module", params=["jupyterlab", "notebook7"])
def frontend(request, emulator, tmp_path_factory):
    """(name, notebook URL): one server per frontend, serving a notebook that shows a Playground."""
    root = tmp_path_factory.mktemp(request.param)
    write_notebook(root / "playground.ipynb", "import qwen_nb as q\npg = q.Playground()\npg")
    with jupyter_server(request.param, root, emulator.url) as base:
        yield request.param, notebook_url(base, "playground.ipynb")


def _turns(page):
    return page.locator(".qwen-nb-turn")


def _send(page, text: str) -> None:
    page.fill(PROMPT_BOX, text)
    page.locator(SEND).first.click()


def _shot_responses(page, turn, prefix: str) -> None:
    """Screenshots of the Responses API turn and of the controls (API toggle, tools row), each scrolled into view."""
    for part, target in (("responses-turn", turn), ("controls", page.locator(".qwen-nb-tools").first)):
        target.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(200)
        shot(page, f"{prefix}-{part}")


def test_playground_reads_as_a_conversation_at_any_width_and_theme(frontend, emu):
    from playwright.sync_api import expect, sync_playwright

    name, url = frontend
    with sync_playwright() as p:
        browser = launch(p)
        page = open_notebook(browser, url, width=1400)
        try:
            run_all(page, SEND, name=f"{name}-playground")
            choose(page, "Profile", "default")
            choose(page, "Model", "qwen-plus")

            # 1. two prompts: both questions and both answers shown, in order
            _send(page, "Who are you?")
            expect(_turns(page).nth(0).locator(".jp-OutputArea-output:has-text('I am Qwen')")).to_be_visible(
                timeout=30_000)
            _send(page, "What is 2+2?")
            second = _turns(page).nth(1)
            expect(second.locator(".jp-OutputArea-output:has-text('2 + 2 = 4')")).to_be_visible(timeout=30_000)
            expect(second.locator(".widget-html:has-text(' total')").first).to_be_visible(timeout=30_000)
            boxes = []
            for i, (question, answer) in enumerate((("Who are you?", "I am Qwen"), ("What is 2+2?", "2 + 2 = 4"))):
                turn = _turns(page).nth(i)
                q = turn.locator(".qwen-nb-question")
                a = turn.locator(f".jp-OutputArea-output:has-text('{answer}')")
                expect(q).to_have_text(question)
                expect(q).to_be_visible()
                expect(a).to_be_visible()
                boxes += [q.bounding_box()["y"], a.bounding_box()["y"]]
            assert boxes == sorted(boxes), f"turns out of order: {boxes}"
            expect(page.locator(".widget-html:has-text('2 earlier turns')").first).to_be_visible()
            # the code of the second turn, beside its answer: the first turn rides along
            second.locator("button:has-text('Code')").click()
            code = second.locator(".qwen-nb-code")
            expect(code.locator("pre").first).to_contain_text("Who are you?", timeout=15_000)
            expect(code.locator("label:text-is('Language')")).to_be_visible()
            expect(code.locator("button.qwen-nb-copy")).to_be_visible()
            shot(page, f"{name}-1-two-turns-1400-light")
            second.locator("button:has-text('Code')").click()

            # 2. a long answer stopped: the turn says so, with what it was billed
            emu.set_faults(tokens_per_second=20, reply_tokens=400)
            _send(page, "Write a long essay about tea")
            third = _turns(page).nth(2)
            expect(third.locator(".jp-OutputArea-output")).to_contain_text(re.compile(r"\w+ \w+ \w+"),
                                                                           timeout=30_000)
            page.locator("button.jupyter-button:has-text('Stop')").first.click()
            chips = third.locator(".widget-html:has-text('stopped')").first
            expect(chips).to_be_visible(timeout=15_000)
            text = chips.inner_text()
            assert "■ stopped" in text and re.search(r"billed \d+ in · \d+ out", text), text
            emu.reset()
            shot(page, f"{name}-2-stopped-1400-light")

            # 3. a model the workspace was not granted: a short error on the turn, and the action
            choose(page, "Profile", "team-a")
            assert "not granted" in choose(page, "Model", "qwen-max").replace("\xa0", " ")
            _send(page, "Hello")
            fourth = _turns(page).nth(3)
            panel = fourth.locator(".qwen-nb-error")
            expect(panel).to_be_visible(timeout=30_000)
            assert "qwen-max" in panel.locator("div").first.inner_text()
            assert "Traceback" not in page.content()
            expect(fourth.locator(".widget-html:has-text('✗')").first).to_be_visible()
            action = fourth.locator("button:has-text(\"Use profile 'default'\")")
            expect(action).to_be_visible()
            shot(page, f"{name}-3-not-granted-1400-light")
            action.click()
            fifth = _turns(page).nth(4)
            expect(fifth.locator(".widget-html:has-text('qwen-max · default')").first).to_be_visible(timeout=30_000)
            expect(fifth.locator(".jp-OutputArea-output")).to_contain_text(re.compile(r"\w"))
            picked = page.locator(".widget-dropdown:has(label:text-is('Profile')) select").first
            assert picked.evaluate("s => s.options[s.selectedIndex].text").startswith("default")
            shot(page, f"{name}-4-action-done-1400-light")
            if name == "jupyterlab":  # the README's picture (docs/playground.png is a copy of it)
                second.evaluate("e => e.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(300)
                box = page.locator(".jp-OutputArea-output:has(.qwen-nb-playground)").first.bounding_box()
                view = page.viewport_size
                top = max(second.bounding_box()["y"] - 4, 80)
                shot(page, "playground-readme", full_page=False, clip={
                    "x": box["x"] - 8, "y": top, "width": box["width"] + 16,
                    "height": min(view["height"] - top - 40, 760)})

            # 3b. the Responses API mode: a tool ticked, its step shown above the streamed answer
            page.locator("button.widget-toggle-button:has-text('Responses API')").first.click()
            expect(page.locator(".qwen-nb-tools")).to_be_visible(timeout=15_000)
            assert "qwen3-max" in choose(page, "Model", "qwen3-max")
            page.locator(".qwen-nb-tools input[type=checkbox]").first.check()
            _send(page, "What is new in Qwen3?")
            sixth = _turns(page).nth(5)
            step = sixth.locator(".qwen-nb-step").first
            expect(step).to_contain_text("web search", timeout=30_000)
            expect(step).to_contain_text("completed")
            expect(sixth.locator(".jp-OutputArea-output:has-text('canned answer')")).to_be_visible(timeout=30_000)
            expect(page.locator(".widget-html:has-text('Continues from the previous response')").first).to_be_visible()
            step.locator("summary").click()  # the step's detail unfolds
            expect(step.locator("pre").first).to_be_visible()
            shot(page, f"{name}-4b-responses-1400-light")

            # 4. at 800 px nothing in the widget overflows its box (settings open, a code panel shown)
            page.set_viewport_size({"width": 800, "height": 1100})
            page.locator(".widget-accordion .jp-Collapse-header:has-text('Parameters'), "
                         ".widget-accordion .lm-TabBar-tab:has-text('Parameters'), "
                         ".widget-accordion :text-is('Parameters')").first.click()
            fifth.locator("button:has-text('Code')").click()
            expect(fifth.locator(".qwen-nb-code pre").first).to_be_visible(timeout=15_000)
            page.wait_for_timeout(500)
            area = page.locator(".jp-OutputArea-output:has(.qwen-nb-playground)").first
            problems = overflows(area)
            shot(page, f"{name}-5-800-light")
            _shot_responses(page, sixth, f"{name}-5-800-light")
            assert problems == [], "\n".join(problems)
            slider = page.locator(".widget-hslider:has(label:text-is('Temperature')) .slider-container").first
            assert slider.bounding_box()["width"] > 80  # not squeezed to a dot

            # 5. dark theme: error and ✗ text keep >= 4.5:1 against what is behind them
            set_theme(page, "dark")
            problems = overflows(area)
            shot(page, f"{name}-6-800-dark")
            _shot_responses(page, sixth, f"{name}-6-800-dark")
            assert problems == [], "\n".join(problems)
            ratios = {
                "error headline": contrast(page, panel.locator("div").first),
                "✗ mark": contrast(page, fourth.locator("span:has-text('✗')").first),
                "stopped mark": contrast(page, third.locator("span:has-text('■ stopped')").first),
                "question": contrast(page, _turns(page).nth(0).locator(".qwen-nb-question")),
                "context line": contrast(page, page.locator(".widget-html:has-text('earlier turn') span").first),
                "tool step": contrast(page, step.locator("b").first),
                "tool step status": contrast(page, step.locator("summary span").first),
                "tool step summary": contrast(page, step.locator("summary span").nth(1)),
            }
            (ARTIFACTS / f"{name}-contrast-dark.txt").write_text(
                "\n".join(f"{k}: {v:.2f}" for k, v in ratios.items()) + "\n")
            assert all(r >= 4.5 for r in ratios.values()), ratios
            page.set_viewport_size({"width": 1400, "height": 1100})
            page.wait_for_timeout(300)
            shot(page, f"{name}-7-1400-dark")
        except Exception:
            shot(page, f"{name}-playground-failure")
            raise
        finally:
            emu.reset()
            browser.close()
