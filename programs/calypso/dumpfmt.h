/*
 * dumpfmt.h: the dump format of `calypso dump` and `calypso load`, a line
 * oriented text format that carries any binary key and value and the key's
 * expiry. The grammar is in CLI_DUMP_FORMAT_HELP below (also printed by
 * `calypso dump --help` and copied into the README).
 */
#ifndef CLI_DUMPFMT_H
#define CLI_DUMPFMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_DUMP_VERSION 1

#define CLI_DUMP_FORMAT_HELP \
    "Dump format (version 1), one line each:\n" \
    "  # calypso-dump 1        the header, first\n" \
    "  KEY VALUE EXPIRY        one line per record, fields split by spaces\n" \
    "  # end COUNT             the trailer: COUNT records since the header\n" \
    "KEY and VALUE are percent-escaped: bytes 0x21-0x7e stand for themselves\n" \
    "except '%' and '#'; every other byte (space, newline, NUL, 0x7f-0xff)\n" \
    "is %XX in hex. An empty string is written '-' (and the one-byte string\n" \
    "'-' as %2D). EXPIRY is 0 for none, else the Unix time in milliseconds\n" \
    "when the key expires. Other lines starting with '#' are comments; a\n" \
    "header may start a new section (dumps concatenate). A section without\n" \
    "its trailer, or with a wrong COUNT, is an error: the dump was cut.\n"

/* >> writing */
void cli_dump_header(FILE *f);
void cli_dump_record(FILE *f, const void *key, size_t klen,
                     const void *val, size_t vlen, uint64_t expires_ms);
void cli_dump_trailer(FILE *f, uint64_t count);

/* >> reading */
/* One record read back; key and val point into the reader's line buffer
 * and stay valid until the next cli_dump_next or cli_dump_reader_free. */
typedef struct cli_dump_rec {
    const char *key, *val;
    size_t      klen, vlen;
    uint64_t    expires_ms;   /* 0: no expiry */
} cli_dump_rec;

typedef struct cli_dump_reader {
    FILE       *f;
    char       *line;         /* getline's buffer */
    size_t      cap;
    uint64_t    lineno;       /* of the line last read, from 1 */
    uint64_t    bytes;        /* read so far, for progress */
    uint64_t    in_section;   /* records since the last header */
    int         open;         /* a header was read, its trailer not yet */
    const char *error;        /* what was wrong, after a -1 */
    int         io_error;     /* that -1 was a read error, not bad input */
} cli_dump_reader;

void cli_dump_reader_init(cli_dump_reader *r, FILE *f);
void cli_dump_reader_free(cli_dump_reader *r);
/* Reads the next record into *rec: 1 when there is one, 0 at a clean end
 * of input, -1 when the input is malformed (r->error says why, r->lineno
 * where) or cannot be read (r->io_error set, errno too). */
int  cli_dump_next(cli_dump_reader *r, cli_dump_rec *rec);

#endif
