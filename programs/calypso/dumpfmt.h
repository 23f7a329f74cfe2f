/*
 * dumpfmt.h: the dump format of `calypso dump` and `calypso load`, a line
 * oriented text format that carries any binary key and value, the key's
 * expiry and the namespace it belongs to. The grammar is in CLI_DUMP_FORMAT_HELP below (also printed by
 * `calypso dump --help` and copied into the README).
 */
#ifndef CLI_DUMPFMT_H
#define CLI_DUMPFMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Version 1: records only (every record in one namespace). Version 2 adds
 * the '# ns NAME' line. A dump is written as version 1 when it has no
 * namespace line, so that releases without namespaces still read it. */
#define CLI_DUMP_VERSION    1
#define CLI_DUMP_VERSION_NS 2

#define CLI_DUMP_FORMAT_HELP \
    "Dump format (version 1 or 2), one line each:\n" \
    "  # calypso-dump V        the header, first (V is 1 or 2)\n" \
    "  KEY VALUE EXPIRY        one line per record, fields split by spaces\n" \
    "  # ns NAME               version 2: the records after it, up to the next\n" \
    "                          '# ns' line or the trailer, are in namespace NAME\n" \
    "  # end COUNT             the trailer: COUNT records since the header\n" \
    "KEY, VALUE and NAME are percent-escaped: bytes 0x21-0x7e stand for\n" \
    "themselves except '%' and '#'; every other byte (space, newline, NUL,\n" \
    "0x7f-0xff) is %XX in hex. An empty string is written '-' (and the\n" \
    "one-byte string '-' as %2D); '# ns -' goes back to the default namespace.\n" \
    "Records before the first '# ns' line of a section, and every record of\n" \
    "a version 1 section, are in the default namespace (with load --ns: in\n" \
    "that one). A '# ns' line names a namespace that load creates when\n" \
    "missing, even with no record after it. EXPIRY is 0 for none, else the\n" \
    "Unix time in milliseconds when the key expires. Other lines starting\n" \
    "with '#' are comments; a header may start a new section (dumps\n" \
    "concatenate), back in the default namespace. A section without its\n" \
    "trailer, or with a wrong COUNT, is an error: the dump was cut. dump\n" \
    "writes version 1 when there is no namespace line to write.\n"

/* >> writing */
void cli_dump_header(FILE *f, int version);
/* A '# ns NAME' line (name NULL: '# ns -', the default namespace). */
void cli_dump_ns(FILE *f, const void *name, size_t len);
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
    int         version;      /* of the open section */
    int         in_named;     /* a '# ns NAME' line is in force */
    const char *ns;           /* after CLI_DUMP_NS: the name, NULL for the */
    size_t      nslen;        /* default namespace (points into line)     */
    const char *error;        /* what was wrong, after a -1 */
    int         io_error;     /* that -1 was a read error, not bad input */
} cli_dump_reader;

void cli_dump_reader_init(cli_dump_reader *r, FILE *f);
void cli_dump_reader_free(cli_dump_reader *r);
/* What cli_dump_next found. */
enum {
    CLI_DUMP_REC = 1,   /* a record, in *rec                                  */
    CLI_DUMP_NS  = 2    /* the records from here on are in namespace r->ns
                           (NULL: the default one); also at a new header after
                           a section that left the default namespace         */
};
/* Reads the next record or namespace change: CLI_DUMP_REC or CLI_DUMP_NS,
 * 0 at a clean end of input, -1 when the input is malformed (r->error
 * says why, r->lineno where) or cannot be read (r->io_error set, errno
 * too). A namespace name is not checked here (the loader knows whether a
 * prefix goes before it). */
int  cli_dump_next(cli_dump_reader *r, cli_dump_rec *rec);

#endif
