/*
 * glob.c: Redis's glob patterns (KEYS, SCAN MATCH, CONFIG GET): `*` any
 * run, `?` one byte, `[abc]`, `[^a-z]` classes (a range given backwards is
 * swapped, `\` escapes inside a class, an unclosed class runs to the end
 * of the pattern), `\x` a literal x. Matching is iterative, with one
 * backtrack point for the last `*` seen: every other token matches exactly
 * one byte, so that is enough, and no pattern can exhaust the stack or
 * take exponential time (Redis had to add a nesting limit to its
 * recursive matcher for that).
 */
#include <ctype.h>

#include "calypsod.h"

static int cd_glob_fold(int c, int nocase) { return nocase ? tolower(c) : c; }

/* Does byte ch match the one-byte token at pat[0, plen)? *len receives the
 * token's length in the pattern. */
static int cd_glob_token(const unsigned char *pat, size_t plen, int ch, int nocase, size_t *len)
{
    size_t i = 0;
    if (pat[0] == '?') { *len = 1; return 1; }
    if (pat[0] == '\\' && plen >= 2) {
        *len = 2;
        return cd_glob_fold(pat[1], nocase) == cd_glob_fold(ch, nocase);
    }
    if (pat[0] != '[') {
        *len = 1;
        return cd_glob_fold(pat[0], nocase) == cd_glob_fold(ch, nocase);
    }
    i = 1;
    int neg = i < plen && pat[i] == '^';
    if (neg) i++;
    int match = 0;
    for (;;) {
        if (i >= plen) break; /* unclosed: the class ends with the pattern */
        if (pat[i] == '\\' && plen - i >= 2) {
            if (pat[i + 1] == ch) match = 1;
            i += 2;
        } else if (pat[i] == ']') {
            i++;
            break;
        } else if (plen - i >= 3 && pat[i + 1] == '-') {
            int a = cd_glob_fold(pat[i], nocase), b = cd_glob_fold(pat[i + 2], nocase);
            int c = cd_glob_fold(ch, nocase);
            if (a > b) { int t = a; a = b; b = t; }
            if (c >= a && c <= b) match = 1;
            i += 3;
        } else {
            if (cd_glob_fold(pat[i], nocase) == cd_glob_fold(ch, nocase)) match = 1;
            i++;
        }
    }
    *len = i;
    return neg ? !match : match;
}

int cd_glob_match(const char *pattern, size_t plen, const char *str, size_t slen, int nocase)
{
    const unsigned char *p = (const unsigned char *)pattern, *s = (const unsigned char *)str;
    size_t pi = 0, si = 0;
    size_t star_p = (size_t)-1, star_s = 0;
    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*') pi++;
            if (pi == plen) return 1;
            star_p = pi;
            star_s = si;
            continue;
        }
        size_t tl;
        if (pi < plen && cd_glob_token(p + pi, plen - pi, s[si], nocase, &tl)) {
            pi += tl;
            si++;
            continue;
        }
        if (star_p == (size_t)-1) return 0;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*') pi++;
    return pi == plen;
}
