"""Speech recognition: whisper.cpp through pywhispercpp, plus the repetition guard that cuts decoding loops.

``sttkb.asr.guard`` holds the pure loop detection and token-budget functions; the engine (owned by the ASR
part) wraps pywhispercpp and always loads a model from a file path, never by name.
"""
