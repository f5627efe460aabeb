"""`[extraction] model`: a separate mlx-lm model that writes pairs at night, checked by the same firewall.

The default model stands in for the larger instruct model a person would name (no other weights are here)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.config import load_settings
from helpers_exchanges import exchanges_from_texts
from storage.errors import ConfigError, ModelError
from tasks.extraction import ExtractionConfig


def test_the_extraction_model_is_a_model_folder_or_a_hub_id(tmp_path):
    assert ExtractionConfig().model is None and not ExtractionConfig().writes_with_model
    assert ExtractionConfig(use_model=True).writes_with_model
    hub = ExtractionConfig(model="mlx-community/Qwen2.5-1.5B-Instruct-4bit")
    assert hub.model == "mlx-community/Qwen2.5-1.5B-Instruct-4bit" and hub.writes_with_model
    with pytest.raises(ValidationError, match="no folder"):
        ExtractionConfig(model=str(tmp_path / "nothing" / "here"))
    with pytest.raises(ValidationError, match="no config.json"):
        ExtractionConfig(model=str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert ExtractionConfig(model=str(tmp_path)).model == str(tmp_path.resolve())
    assert ExtractionConfig(model="  ").model is None


def test_a_bad_extraction_model_in_config_toml_is_one_line_naming_the_setting(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[extraction]\nmodel = "{tmp_path / "gone"}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    message = str(err.value)
    assert "\n" not in message and "extraction.model" in message and "no folder" in message
    assert str(config) in message


def test_a_hub_id_that_cannot_be_fetched_is_one_line_naming_the_setting():
    from flows.candidate_pairs import extraction_generator

    with pytest.raises(ModelError) as err:  # no network here: the hub cannot be reached
        extraction_generator("slowwave-test/no-such-model", ExtractionConfig())
    assert "\n" not in str(err.value) and "[extraction] model 'slowwave-test/no-such-model'" in str(err.value)


@pytest.mark.model
def test_the_named_model_writes_pairs_and_the_firewall_judges_each(converted_model_dir):
    from flows.candidate_pairs import extraction_generator
    from flows.config import Settings
    from tasks.extraction import extract_model_pairs
    from tasks.firewall import apply_firewall
    from tasks.scoring import score_exchanges

    cfg = ExtractionConfig(model=str(converted_model_dir), model_max_tokens=48)
    table = exchanges_from_texts([("My name is Ingrid and I live in Bergen with my dog Pepper.", "Nice to meet you!"),
                                  ("I work as a glassblower in a small studio.", "That sounds fascinating.")])
    written: list[str] = []
    generate = extraction_generator(cfg.model, cfg)

    def recorded(chats):
        out = generate(chats)
        written.extend(out)
        return out

    candidates = extract_model_pairs(table, recorded, cfg)
    assert len(written) == 2 and all(w.strip() for w in written)  # the model answered each exchange
    rows = candidates.to_pylist()
    assert rows and all(r["method"] == "model" for r in rows), written
    settings = Settings()
    pairs, rejections = apply_firewall(candidates, table, score_exchanges(table, settings.scoring), settings.firewall)
    judged = set(pairs["pair_id"].to_pylist()) | set(rejections["pair_id"].to_pylist())
    assert judged == {r["pair_id"] for r in rows}  # every pair it wrote was accepted or rejected with a reason
    assert all(reason for reason in rejections["reason"].to_pylist())


def test_a_model_answer_in_the_persons_words_is_turned_to_the_second_person():
    from tasks.extraction import extract_model_pairs

    table = exchanges_from_texts([("My name is Ana and I'm a nurse.", "Hello Ana!")])
    written = "Q: What is my name?\nA: My name is Ana.\nQ: What do I do?\nA: I'm a nurse.\nQ: Where?\nA: Lisbon."
    rows = extract_model_pairs(table, lambda chats: [written] * len(chats), ExtractionConfig()).to_pylist()
    assert [(r["question"], r["answer"]) for r in rows] == [
        ("What is my name?", "Your name is Ana."), ("What do I do?", "You're a nurse."), ("Where?", "Lisbon.")]
