"""Emulator reply text: inline images named by their type, JSON objects with the keys asked for."""

from __future__ import annotations

import json

from qwen_nb.emulator.replies import image_reply, json_reply, requested_keys


def test_inline_images_are_named_by_type_not_by_their_base64():
    text = image_reply("What is this?", ["data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"], key=1)
    assert "inline PNG image" in text
    assert "base64" not in text and "iVBOR" not in text


def test_json_objects_have_the_keys_the_prompt_asks_for():
    prompt = "Return a json object with keys name, capital and population for France."
    assert requested_keys(prompt) == ["name", "capital", "population"]
    obj = json.loads(json_reply(prompt, key=7))
    assert list(obj) == ["name", "capital", "population"]
    assert isinstance(obj["population"], int) and "France" in obj["capital"]
    assert json_reply(prompt, key=7) == json_reply(prompt, key=7)
    other = json.loads(json_reply("Give a json object with keys country and year_founded for Acme.", key=1))
    assert isinstance(other["country"], str) and isinstance(other["year_founded"], int)


def test_json_without_requested_keys_keeps_the_default_shape():
    assert requested_keys("Answer in json about cats") == []
    assert set(json.loads(json_reply("Answer in json about cats", key=1))) == {"topic", "summary", "keywords"}
