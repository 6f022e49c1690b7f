# The bert-study's cached token stream, shared by the diagnosis scripts: $WTN_TOKENS if set, else the cache file the
# study's own settings write ($WTN_DATA/cache, vocabulary 8000, SOTU + Brown + the IMDB training half), checked as wtn
# checks it (magic, sizes, SHA-256).
import hashlib, os, struct, sys, numpy as np

STUDY_CACHE = 'tokens-e3fa426e9804576da8a56026.bin'

def path():
    p = os.environ.get('WTN_TOKENS') or os.path.join(os.environ.get('WTN_DATA', 'data'), 'cache', STUDY_CACHE)
    if not os.path.isfile(p):
        sys.exit(f'{p}: token cache not found; run `wtn run experiments/bert-study.yaml --only seed-0/wide` once to write it '
                 '(or set WTN_TOKENS to another wtn token cache)')
    return p

def load():
    """(docs, offsets, ids): the documents' token offsets (docs + 1 of them) and the concatenated token ids."""
    p = path()
    raw = open(p, 'rb').read()
    if len(raw) < 20 + 8 + 32 or raw[:8] != b'WTNTOK01':
        sys.exit(f'{p}: not a wtn token cache (too short or no WTNTOK01 magic); delete it and let wtn write it again')
    docs, toks = struct.unpack('<iq', raw[8:20]); h = 20
    body = h + 8 * (docs + 1) + 4 * toks
    if len(raw) != body + 32 or hashlib.sha256(raw[:body]).digest() != raw[body:]:
        sys.exit(f'{p}: size or SHA-256 does not match its header ({docs} documents, {toks} tokens); delete it and let wtn write it again')
    off = np.frombuffer(raw, dtype='<i8', count=docs + 1, offset=h)
    ids = np.frombuffer(raw, dtype='<i4', count=toks, offset=h + 8 * (docs + 1))
    return docs, off, ids
