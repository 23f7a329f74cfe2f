"""ketama.py: where twemproxy (nutcracker 0.5.0) sends a key, computed
outside the proxy, for a configuration of `distribution: ketama`: the
continuum of 160 points per shard of equal weight (four per MD5 of
"NAME-i", i = 0..39, NAME the shard's name in the configuration, else its
host:port:weight), the key's hash (murmur, md5 or fnv1a_64, as the proxy
computes them: 32-bit), the first point at or after that hash, wrapping
around. With a hash_tag "{}", only the text inside the first {...} (when
not empty) is hashed.

rebalance.py uses it to find the keys whose owner changed; the cluster
tests check it against the proxy's own placement of thousands of keys.
"""
import bisect
import hashlib
import re

M32 = 0xFFFFFFFF


def murmur(key):
    """twemproxy's hash_murmur: MurmurHash2, seed 0xdeadbeef * length."""
    n = len(key)
    m = 0x5BD1E995
    h = ((0xDEADBEEF * n) & M32) ^ n
    i = 0
    while n - i >= 4:
        k = int.from_bytes(key[i:i + 4], "little")
        k = (k * m) & M32
        k ^= k >> 24
        k = (k * m) & M32
        h = ((h * m) & M32) ^ k
        i += 4
    rest = n - i
    if rest == 3:
        h ^= key[i + 2] << 16
    if rest >= 2:
        h ^= key[i + 1] << 8
    if rest >= 1:
        h ^= key[i]
        h = (h * m) & M32
    h ^= h >> 13
    h = (h * m) & M32
    h ^= h >> 15
    return h


def md5(key):
    return int.from_bytes(hashlib.md5(key).digest()[:4], "little")


def fnv1a_64(key):
    """twemproxy's hash_fnv1a_64: 32-bit arithmetic with the 64-bit offset
    and prime truncated, which is why it spreads similar keys poorly."""
    h = 0xCBF29CE484222325 & M32
    for b in key:
        h ^= b
        h = (h * (0x100000001B3 & M32)) & M32
    return h


HASHES = {"murmur": murmur, "md5": md5, "fnv1a_64": fnv1a_64}


class Ring:
    """The continuum of a list of shard names (all of equal weight)."""

    def __init__(self, names, hash_name="murmur", hash_tag="{}"):
        if hash_name not in HASHES:
            raise ValueError("hash %r is not supported here (only %s)" % (hash_name, ", ".join(HASHES)))
        self.hash = HASHES[hash_name]
        self.tag = hash_tag.encode() if hash_tag else b""
        points = []
        for idx, name in enumerate(names):
            for i in range(40):
                d = hashlib.md5(("%s-%d" % (name, i)).encode()).digest()
                for x in range(4):
                    points.append((int.from_bytes(d[4 * x:4 * x + 4], "little"), idx))
        points.sort()
        self.values = [v for v, _ in points]
        self.owners = [o for _, o in points]

    def hashed_part(self, key):
        if len(self.tag) == 2:
            a = key.find(self.tag[:1])
            if a >= 0:
                b = key.find(self.tag[1:], a + 1)
                if b > a + 1:
                    return key[a + 1:b]
        return key

    def owner(self, key):
        """The index (into names) of the shard that owns key (bytes)."""
        h = self.hash(self.hashed_part(key))
        i = bisect.bisect_left(self.values, h)
        return self.owners[i if i < len(self.values) else 0]


def read_config(path):
    """(servers, hash, hash_tag) of the first pool of a nutcracker
    configuration: servers as (host, port, name) in their order."""
    servers, hash_name, tag = [], "fnv1a_64", ""
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].rstrip()
            m = re.match(r"\s*-\s+([^:\s]+):(\d+):(\d+)(?:\s+(\S+))?\s*$", line)
            if m:
                host, port, weight, name = m.groups()
                if weight != "1":
                    raise ValueError("%s: weights other than 1 are not supported here" % path)
                servers.append((host, int(port), name or "%s:%s:%s" % (host, port, weight)))
                continue
            m = re.match(r"\s*(hash|hash_tag|distribution):\s*\"?([^\"]*)\"?\s*$", line)
            if m and m.group(1) == "hash":
                hash_name = m.group(2)
            elif m and m.group(1) == "hash_tag":
                tag = m.group(2)
            elif m and m.group(2) != "ketama":
                raise ValueError("%s: distribution %s, not ketama" % (path, m.group(2)))
    return servers, hash_name, tag
