"""Parse-based extraction: facts and statements read off the dependency tree of a person's own sentences.

pipeline (the checked spaCy pipeline), sentences (which sentences are parsed, and why others are not),
rules (a parsed sentence's facts), rewrite (a sentence in the second person) and extract (the stage's
candidate rows).
"""
