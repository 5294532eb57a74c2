"""The text pipeline: pure functions between whisper.cpp's segment text and the keyboard.

Modules: ``hallucination`` (made-up phrases and sound tags), ``join`` (spaces and punctuation between
segments), ``replacements`` (user dictionary), ``commands`` (spoken "new line" ...), ``numbers`` (words to
digits), ``fillers`` (um, uh), ``paragraphs`` (break after a long pause) and ``pipeline`` (all of them in order).
The output is plain Unicode text; turning it into keys is ``gadget/``'s job.
"""
