#!/usr/bin/python3
"""capture_redis.py: the requests of test_protocol.py (CASES) and the tool
that regenerates their expected replies, protocol_replies.py, from a real
redis-server (Debian's 7.0.15): each request is sent on a fresh
connection after a FLUSHALL, and the reply bytes (and whether the server
closed the connection) are recorded.

    redis-server --port 6399 --save '' --appendonly no &
    tests/server/capture_redis.py 6399 > tests/server/protocol_replies.py
"""
import sys
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import Conn, cmd  # noqa: E402

# (name, request bytes). Only requests whose Redis reply calypsod must
# match exactly; where calypsod differs on purpose, test_protocol.py says so.
CASES = [
    ("inline ping", b"PING\r\n"),
    ("empty inline line then ping", b"\r\nPING\r\n"),
    ("several empty lines, bare LF", b"\n\n\nPING\n"),
    ("spaces around inline", b"  PING  \r\n"),
    ("negative multibulk ignored", b"*-10\r\nPING\r\n"),
    ("zero multibulk ignored", b"*0\r\nPING\r\n"),
    ("multibulk over INT_MAX", b"*3000000000\r\n"),
    ("multibulk INT_MAX+1", b"*2147483648\r\n"),
    ("multibulk INT_MAX accepted", b"*2147483647\r\n" + cmd("PING")),
    ("multibulk with leading zero", b"*01\r\n$4\r\nPING\r\n"),
    ("multibulk with plus", b"*+1\r\n$4\r\nPING\r\n"),
    ("multibulk count with bare LF", b"*1\n$4\r\nPING\r\n"),
    ("negative bulk", b"*1\r\n$-10\r\n"),
    ("bulk over 512MB", b"*1\r\n$2000000000\r\n"),
    ("bulk 512MB+1", b"*1\r\n$536870913\r\n"),
    ("bulk of 512MB waits for its data", b"*1\r\n$536870912\r\n"),
    ("bulk not a number", b"*1\r\n$blabla\r\n"),
    ("null bulk in a request", b"*1\r\n$-1\r\n"),
    ("bulk with leading zero", b"*1\r\n$04\r\nPING\r\n"),
    ("expected $", b"*1\r\nfoo\r\n"),
    ("bulk trailer not checked", b"*2\r\n$4\r\nECHO\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n"),
    ("empty bulk", b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"),
    ("empty command name", b"*1\r\n$0\r\n\r\n"),
    ("incomplete request waits", b"*2\r\n$3\r\nGET\r\n"),
    ("count line without LF waits", b"*1\r\n$4\r\nPING\r"),
    ("unbalanced quotes 1", b'set """test-key""" test-value\r\n'),
    ("unbalanced quotes 2", b'SET "unbalanced\r\n'),
    ("unbalanced quotes 3", b"ECHO \"abc\r\n"),
    ("quote followed by text", b"PING 'a'b\r\n"),
    ("too big inline", b"x" * 70000),
    ("too big mbulk count", b"*1" + b"1" * 70000),
    ("too big bulk count", b"*1\r\n$1" + b"1" * 70000),
    ("desync NUL", b"\x00payload" * 9000),
    ("desync *NUL", b"*\x00" + b"x" * 70000),
    ("desync $NUL", b"$\x00" + b"x" * 70000),
    ("NUL inside an inline line", b"PI\x00NG\r\n"),
    ("inline quotes", b'SET "a b" \'c d\'\r\nGET "a b"\r\n'),
    ("inline escapes", b'SET k "\\x41\\n\\tz"\r\nGET k\r\nSTRLEN k\r\n'),
    ("inline backslash and quote", b"ECHO \"a\\\\b\\\"c\"\r\n"),
    ("inline single-quote escape", b"ECHO 'a\\'b'\r\n"),
    ("inline short hex", b"ECHO \"\\x4\"\r\n"),
    ("inline bad hex", b"ECHO \"\\xzz\"\r\n"),
    ("inline quote inside a word", b"ECHO ab\"c d\"\r\n"),
    ("two inline commands, LF", b"PING\nPING\n"),
    ("binary echo", b"*2\r\n$4\r\nECHO\r\n$3\r\na\x00b\r\n"),
    ("security: host:", b"host: foo\r\nPING\r\n"),
    ("security: POST", b"POST / HTTP/1.1\r\n"),
    ("arity", cmd("GET")),
    ("unknown command", cmd("FOO")),
    ("unknown command with args", cmd("FOO", "a", "b")),
    ("unknown command long arg", cmd("foo", "a" * 200)),
    ("unknown command CRLF in arg", cmd("foo", "x\r\ny")),
    ("lowercase names", cmd("set", "K", "v", "ex", "10", "nx") + cmd("Get", "K")),
    ("SET NX XX", cmd("SET", "k", "v", "NX", "XX")),
    ("SET EX 0", cmd("SET", "k", "v", "EX", "0")),
    ("SET EX abc", cmd("SET", "k", "v", "EX", "abc")),
    ("SET EX missing", cmd("SET", "k", "v", "EX")),
    ("SET KEEPTTL EX", cmd("SET", "k", "v", "KEEPTTL", "EX", "10")),
    ("SET GET", cmd("SET", "k", "v", "GET") + cmd("SET", "k", "w", "GET")),
    ("SET NX GET", cmd("SET", "k", "v", "NX", "GET") + cmd("SET", "k", "w", "NX", "GET") + cmd("GET", "k")),
    ("SET XX", cmd("SET", "k", "v", "XX") + cmd("GET", "k")),
    ("SET PX, PTTL", cmd("SET", "k", "v", "PX", "100000") + cmd("EXISTS", "k")),
    ("SET EXAT past", cmd("SET", "k", "v", "EXAT", "1") + cmd("GET", "k")),
    ("SET EXAT KEEPTTL", cmd("SET", "k", "v", "EXAT", "99999999999") + cmd("SET", "k", "v", "KEEPTTL") + cmd("EXPIRETIME", "k")),
    ("SET PXAT KEEPTTL GET", cmd("SET", "k", "v", "PXAT", "99999999999000") + cmd("SET", "k", "w", "KEEPTTL", "GET") + cmd("PEXPIRETIME", "k") + cmd("SET", "k", "x") + cmd("TTL", "k")),
    ("INCR overflow", cmd("SET", "k", "1") + cmd("INCR", "k") + cmd("INCRBY", "k", "9223372036854775807")),
    ("INCR not integer", cmd("SET", "k", "a") + cmd("INCR", "k")),
    ("INCR edge values", cmd("SET", "k", "9223372036854775807") + cmd("INCR", "k") + cmd("SET", "k", "-9223372036854775808") + cmd("DECR", "k") + cmd("SET", "k", " 1") + cmd("INCR", "k") + cmd("SET", "k", "01") + cmd("INCR", "k")),
    ("INCRBY/DECRBY", cmd("SET", "k", "1") + cmd("INCRBY", "k", "abc") + cmd("DECRBY", "k", "1") + cmd("DECR", "zz")),
    ("DECRBY LLONG_MIN", cmd("DECRBY", "k", "-9223372036854775808")),
    ("INCR keeps TTL", cmd("SET", "k", "10") + cmd("EXPIRE", "k", "100") + cmd("INCR", "k") + cmd("TTL", "k") + cmd("APPEND", "k", "1") + cmd("TTL", "k")),
    ("INCRBYFLOAT errors", cmd("INCRBYFLOAT", "f", "1.5") + cmd("INCRBYFLOAT", "f", "abc") + cmd("INCRBYFLOAT", "f", " 1") + cmd("INCRBYFLOAT", "f", "1e400")),
    ("INCRBYFLOAT format", cmd("INCRBYFLOAT", "f", "10.5") + cmd("INCRBYFLOAT", "f", "0.1") + cmd("INCRBYFLOAT", "f", "-10.6") + cmd("INCRBYFLOAT", "f", "5.0e3")),
    ("INCRBYFLOAT more", cmd("INCRBYFLOAT", "k", "1.0e1") + cmd("INCRBYFLOAT", "k", "-5") + cmd("INCRBYFLOAT", "k", "0.0000001") + cmd("SET", "i", "abc") + cmd("INCRBYFLOAT", "i", "1")),
    ("INCR extra arg", cmd("INCR", "k", "x")),
    ("EXISTS duplicates", cmd("SET", "a", "x") + cmd("EXISTS", "a", "a", "zz")),
    ("TTL, EXPIRE -1", cmd("TTL", "zz") + cmd("SET", "a", "x") + cmd("TTL", "a") + cmd("PTTL", "zz") + cmd("EXPIRE", "a", "-1") + cmd("EXISTS", "a")),
    ("TYPE", cmd("TYPE", "a") + cmd("SET", "a", "x") + cmd("TYPE", "a")),
    ("RENAME missing", cmd("RENAME", "nokey", "b")),
    ("RENAME and RENAMENX", cmd("SET", "src", "v") + cmd("RENAME", "src", "dst") + cmd("GET", "dst") + cmd("RENAMENX", "dst", "dst") + cmd("SET", "x", "1") + cmd("RENAMENX", "dst", "x") + cmd("RENAME", "dst", "dst")),
    ("RENAME keeps TTL, COPY", cmd("SET", "k", "v") + cmd("EXPIRE", "k", "100") + cmd("RENAME", "k", "j") + cmd("TTL", "j") + cmd("COPY", "j", "i") + cmd("TTL", "i")),
    ("COPY", cmd("SET", "a", "v") + cmd("COPY", "a", "b") + cmd("COPY", "a", "b") + cmd("COPY", "a", "b", "REPLACE") + cmd("COPY", "a", "a") + cmd("COPY", "zz", "q") + cmd("COPY", "a", "c", "DB", "99") + cmd("COPY", "a", "c", "FOO")),
    ("SCAN one page", cmd("SET", "a", "1") + cmd("SCAN", "0", "MATCH", "*", "COUNT", "10")),
    ("SCAN bad cursor", cmd("SCAN", "abc")),
    ("SCAN cursor over 64 bits", cmd("SCAN", "18446744073709551616")),
    ("SCAN options", cmd("SCAN", "0", "COUNT", "0") + cmd("SCAN", "0", "COUNT") + cmd("SCAN", "0", "FOO", "1") + cmd("SCAN", "0", "TYPE", "list")),
    ("SELECT", cmd("SELECT", "99") + cmd("SELECT", "0") + cmd("SELECT", "x") + cmd("SELECT", "16") + cmd("SELECT", "-1")),
    ("EXEC/DISCARD alone", cmd("EXEC") + cmd("DISCARD")),
    ("MULTI queue-time error", cmd("MULTI") + cmd("SET", "a", "1") + cmd("FOO") + cmd("EXEC") + cmd("GET", "a")),
    ("MULTI run-time error", cmd("MULTI") + cmd("SET", "a", "x") + cmd("INCR", "a") + cmd("GET", "a") + cmd("EXEC")),
    ("MULTI nested", cmd("MULTI") + cmd("MULTI") + cmd("EXEC")),
    ("WATCH inside MULTI", cmd("MULTI") + cmd("WATCH", "a") + cmd("EXEC")),
    ("MULTI arity error", cmd("MULTI") + cmd("GET") + cmd("EXEC")),
    ("MULTI no-multi command", cmd("MULTI") + cmd("SAVE") + cmd("EXEC")),
    ("WATCH own write", cmd("WATCH", "a") + cmd("SET", "a", "1") + cmd("MULTI") + cmd("GET", "a") + cmd("EXEC")),
    ("MULTI unknown subcommand", cmd("MULTI") + cmd("CLIENT", "FOO") + cmd("EXEC")),
    ("MULTI DISCARD", cmd("MULTI") + cmd("SET", "a", "1") + cmd("DISCARD") + cmd("GET", "a")),
    ("MULTI QUIT", cmd("MULTI") + cmd("PING") + cmd("QUIT")),
    ("DISCARD then EXEC", cmd("DISCARD") + cmd("MULTI") + cmd("DISCARD") + cmd("EXEC")),
    ("UNWATCH, WATCH arity", cmd("UNWATCH") + cmd("WATCH")),
    ("CLIENT SETNAME space", cmd("CLIENT", "SETNAME", "a b")),
    ("CLIENT SETNAME GETNAME", cmd("CLIENT", "SETNAME", "ab") + cmd("CLIENT", "GETNAME")),
    ("CLIENT unknown", cmd("CLIENT", "FOO")),
    ("CLIENT SETNAME arity", cmd("CLIENT", "SETNAME")),
    ("CLIENT KILL no such", cmd("CLIENT", "KILL", "1.2.3.4:5")),
    ("CLIENT KILL ID none", cmd("CLIENT", "KILL", "ID", "999999")),
    ("AUTH without password", cmd("AUTH", "pw")),
    ("AUTH user without password", cmd("AUTH", "u", "pw")),
    ("AUTH default user", cmd("AUTH", "default", "pw")),
    ("HELLO 4", cmd("HELLO", "4")),
    ("HELLO x", cmd("HELLO", "x")),
    ("HELLO bad option", cmd("HELLO", "3", "FOO")),
    ("HELLO bad name", cmd("HELLO", "3", "SETNAME", "a b")),
    ("CONFIG GET save", cmd("CONFIG", "GET", "save")),
    ("CONFIG GET unknown", cmd("CONFIG", "GET", "nosuch")),
    ("CONFIG SET unknown", cmd("CONFIG", "SET", "nosuch", "1")),
    ("CONFIG SET immutable", cmd("CONFIG", "SET", "databases", "1")),
    ("CONFIG GET arity", cmd("CONFIG", "GET")),
    ("CONFIG unknown", cmd("CONFIG", "FOO")),
    ("PING arity", cmd("PING", "a", "b")),
    ("PING message", cmd("PING", "hello")),
    ("ECHO arity", cmd("ECHO")),
    ("SETEX errors", cmd("SETEX", "k", "0", "v") + cmd("PSETEX", "k", "-1", "v") + cmd("SETEX", "k", "x", "v")),
    ("SETNX", cmd("SETNX", "k", "v") + cmd("SETNX", "k", "v")),
    ("GETSET", cmd("GETSET", "k", "v") + cmd("GETSET", "k", "w")),
    ("GETDEL", cmd("GETDEL", "k") + cmd("SET", "k", "v") + cmd("GETDEL", "k") + cmd("GET", "k")),
    ("GETEX", cmd("SET", "k", "v") + cmd("GETEX", "k", "EX", "100") + cmd("TTL", "k") + cmd("GETEX", "k", "PERSIST") + cmd("TTL", "k") + cmd("GETEX", "k", "PERSIST", "EX", "1") + cmd("GETEX", "zz")),
    ("GETEX missing key first", cmd("GETEX", "k", "EX", "0") + cmd("GETEX", "k", "FOO")),
    ("APPEND STRLEN", cmd("APPEND", "k", "ab") + cmd("APPEND", "k", "cd") + cmd("STRLEN", "k") + cmd("STRLEN", "zz")),
    ("GETRANGE", cmd("SET", "k", "Hello World") + cmd("GETRANGE", "k", "0", "4") + cmd("GETRANGE", "k", "-5", "-1") + cmd("GETRANGE", "k", "-1", "-5") + cmd("GETRANGE", "k", "5", "1") + cmd("GETRANGE", "zz", "0", "1") + cmd("GETRANGE", "k", "0", "100") + cmd("SUBSTR", "k", "0", "1")),
    ("SETRANGE", cmd("SETRANGE", "k", "-1", "x") + cmd("SETRANGE", "k", "5", "x") + cmd("GET", "k") + cmd("SETRANGE", "k2", "0", "") + cmd("SETRANGE", "k", "0", "") + cmd("SETRANGE", "k", "536870912", "x")),
    ("SETRANGE pads", cmd("SETRANGE", "k", "0", "abc") + cmd("SETRANGE", "k", "10", "x") + cmd("GET", "k")),
    ("MSET MGET MSETNX", cmd("MSET", "a", "1", "b") + cmd("MSET", "a", "1", "b", "2") + cmd("MGET", "a", "b", "c") + cmd("MSETNX", "a", "1", "z", "2") + cmd("MSETNX", "y", "1", "z", "2")),
    ("DEL UNLINK", cmd("SET", "a", "1") + cmd("SET", "y", "1") + cmd("DEL", "a", "b", "zz") + cmd("UNLINK", "y")),
    ("EXPIRE flags", cmd("SET", "a", "v") + cmd("EXPIRE", "a", "100", "NX", "XX") + cmd("EXPIRE", "a", "100", "GT", "LT") + cmd("EXPIRE", "a", "100", "FOO") + cmd("EXPIRE", "a", "100", "XX") + cmd("EXPIRE", "a", "100", "NX") + cmd("EXPIRE", "a", "50", "GT") + cmd("EXPIRE", "a", "200", "GT") + cmd("EXPIRE", "a", "300", "LT") + cmd("EXPIRE", "a", "100", "LT") + cmd("TTL", "a") + cmd("EXPIRE", "a", "10", "nx")),
    ("EXPIRE overflow", cmd("EXPIRE", "a", "9223372036854775807") + cmd("SET", "a", "v") + cmd("EXPIRE", "a", "9223372036854775807") + cmd("PEXPIRE", "a", "9223372036854775807") + cmd("EXPIRE", "zz", "10")),
    ("EXPIREAT PERSIST", cmd("SET", "a", "v") + cmd("EXPIREAT", "a", "99999999999") + cmd("EXPIRETIME", "a") + cmd("PEXPIRETIME", "a") + cmd("PERSIST", "a") + cmd("PERSIST", "a") + cmd("EXPIRETIME", "a") + cmd("EXPIRETIME", "zz")),
    ("PEXPIREAT past", cmd("SET", "a", "v") + cmd("PEXPIREAT", "a", "1") + cmd("EXISTS", "a")),
    ("KEYS patterns (one match each)", cmd("SET", "a", "1") + cmd("SET", "ab", "1") + cmd("SET", "b", "1") + cmd("KEYS", "a?") + cmd("KEYS", "[^a]*") + cmd("KEYS", "*c") + cmd("KEYS", "[a-a]") + cmd("KEYS", "\\a")),
    ("KEYS arity", cmd("KEYS", "a", "b")),
    ("DBSIZE FLUSHDB", cmd("DBSIZE") + cmd("SET", "a", "1") + cmd("DBSIZE") + cmd("FLUSHDB", "x") + cmd("FLUSHDB", "ASYNC") + cmd("DBSIZE")),
    ("WAIT", cmd("WAIT", "0", "0") + cmd("WAIT", "x", "0")),
    ("FUNCTION FLUSH", cmd("FUNCTION", "FLUSH")),
    ("FUNCTION unknown", cmd("FUNCTION", "FOO")),
    ("OBJECT ENCODING", cmd("SET", "a", "123") + cmd("OBJECT", "ENCODING", "a") + cmd("SET", "b", "abc") + cmd("OBJECT", "ENCODING", "b") + cmd("OBJECT", "ENCODING", "zz")),
    ("OBJECT unknown", cmd("OBJECT", "FOO", "x")),
    ("RESET", cmd("RESET")),
    ("QUIT closes", cmd("QUIT") + cmd("PING")),
    ("TIME arity", cmd("TIME", "x")),
    ("LASTSAVE arity", cmd("LASTSAVE", "x")),
    ("RANDOMKEY", cmd("RANDOMKEY") + cmd("SET", "a", "1") + cmd("RANDOMKEY")),
    ("TOUCH", cmd("TOUCH", "a", "zz") + cmd("SET", "a", "1") + cmd("TOUCH", "a", "a")),
    ("SHUTDOWN ABORT", cmd("SHUTDOWN", "ABORT")),
    ("BGSAVE bad arg", cmd("BGSAVE", "x")),
    ("COMMAND unknown", cmd("COMMAND", "FOO")),
    ("RESP3 nulls and maps", cmd("HELLO", "3") + cmd("GET", "zz") + cmd("MGET", "a", "b") + cmd("CONFIG", "GET", "save") + cmd("SET", "k", "v", "GET") + cmd("EXEC") + cmd("MULTI") + cmd("EXEC")),
    ("RESP3 WATCH abort", cmd("HELLO", "3") + cmd("WATCH", "a") + cmd("SET", "a", "1") + cmd("MULTI") + cmd("EXEC")),
    ("RESP3 scalars", cmd("HELLO", "3") + cmd("PING") + cmd("ECHO", "x") + cmd("INCRBYFLOAT", "f", "1") + cmd("TTL", "a")),
    ("HELLO 2 flat array", cmd("HELLO", "2", "SETNAME", "x")),
]


def main():
    port = int(sys.argv[1])
    print("# Generated by tests/server/capture_redis.py from redis-server 7.0.15:")
    print("# name -> (reply bytes, connection closed). Do not edit by hand.")
    print("REPLIES = {")
    for name, req in CASES:
        c = Conn(port)
        c.send(cmd("FLUSHALL"))
        c.read_until(5)
        c.send(req)
        reply = c.read_quiet(0.3)
        closed = c.closed
        c.close()
        print("    %r: (%r, %r)," % (name, reply, closed))
    print("}")


if __name__ == "__main__":
    main()
