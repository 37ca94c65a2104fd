# SPDX-License-Identifier: MIT
# A minimal DER walker for the tests' independent producers and checkers (Python, no ASN.1
# library): enough to find a certificate's serial, public key and signature by position.
# Import it with: sys.path.insert(0, os.environ['ITL_SRC'] + '/tests/integration')


def der(b, i):
    """(tag, value start, value end) of the DER element at offset i."""
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[i:i + k], 'big')
        i += k
    return tag, i, i + n


def children(b, start, end):
    """The elements between start and end, each as der() returns it."""
    out = []
    while start < end:
        t, s, e = der(b, start)
        out.append((t, s, e))
        start = e
    return out
