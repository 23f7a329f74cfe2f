/*
 * commands.h: the list of calypsod's commands, one X() line each, from
 * which commands.c builds the command table and every handler's
 * declaration. X(name, handler, arity, flags, first_key, last_key, step):
 * arity as Redis counts it (N: exactly N words with the name, -N: at least
 * N); keys as in Redis's COMMAND INFO (last_key -1: to the end).
 * Which file implements a handler: cd_str_* cmd_string.c, cd_key_*
 * cmd_keys.c, cd_srv_* cmd_server.c, cd_multi_* multi.c, cd_info_*
 * info.c.
 */
#ifndef CALYPSOD_COMMANDS_H
#define CALYPSOD_COMMANDS_H

/* short names for the flags, to keep the table one line per command */
#define CD_W  CD_CMD_WRITE
#define CD_R  CD_CMD_READONLY
#define CD_NA CD_CMD_NOAUTH
#define CD_NM CD_CMD_NOMULTI
#define CD_NQ CD_CMD_NOQUEUE
#define CD_AD CD_CMD_ADMIN
#define CD_F  CD_CMD_FAST

#define CD_COMMANDS(X) \
    /* strings */ \
    X(get,          cd_str_get,         2, CD_R | CD_F,  1, 1, 1) \
    X(set,          cd_str_set,        -3, CD_W,      1, 1, 1) \
    X(setnx,        cd_str_setnx,       3, CD_W | CD_F,  1, 1, 1) \
    X(setex,        cd_str_setex,       4, CD_W,      1, 1, 1) \
    X(psetex,       cd_str_psetex,      4, CD_W,      1, 1, 1) \
    X(getset,       cd_str_getset,      3, CD_W | CD_F,  1, 1, 1) \
    X(getdel,       cd_str_getdel,      2, CD_W | CD_F,  1, 1, 1) \
    X(getex,        cd_str_getex,      -2, CD_W | CD_F,  1, 1, 1) \
    X(append,       cd_str_append,      3, CD_W,      1, 1, 1) \
    X(strlen,       cd_str_strlen,      2, CD_R | CD_F,  1, 1, 1) \
    X(getrange,     cd_str_getrange,    4, CD_R,      1, 1, 1) \
    X(substr,       cd_str_getrange,    4, CD_R,      1, 1, 1) \
    X(setrange,     cd_str_setrange,    4, CD_W,      1, 1, 1) \
    X(incr,         cd_str_incr,        2, CD_W | CD_F,  1, 1, 1) \
    X(decr,         cd_str_decr,        2, CD_W | CD_F,  1, 1, 1) \
    X(incrby,       cd_str_incrby,      3, CD_W | CD_F,  1, 1, 1) \
    X(decrby,       cd_str_decrby,      3, CD_W | CD_F,  1, 1, 1) \
    X(incrbyfloat,  cd_str_incrbyfloat, 3, CD_W | CD_F,  1, 1, 1) \
    X(mget,         cd_str_mget,       -2, CD_R | CD_F,  1, -1, 1) \
    X(mset,         cd_str_mset,       -3, CD_W,      1, -1, 2) \
    X(msetnx,       cd_str_msetnx,     -3, CD_W,      1, -1, 2) \
    /* keys */ \
    X(del,          cd_key_del,        -2, CD_W,      1, -1, 1) \
    X(unlink,       cd_key_del,        -2, CD_W | CD_F,  1, -1, 1) \
    X(exists,       cd_key_exists,     -2, CD_R | CD_F,  1, -1, 1) \
    X(type,         cd_key_type,        2, CD_R | CD_F,  1, 1, 1) \
    X(keys,         cd_key_keys,       -1, CD_R,      0, 0, 0) \
    X(scan,         cd_key_scan,       -2, CD_R,      0, 0, 0) \
    X(randomkey,    cd_key_randomkey,   1, CD_R,      0, 0, 0) \
    X(rename,       cd_key_rename,      3, CD_W,      1, 2, 1) \
    X(renamenx,     cd_key_renamenx,    3, CD_W | CD_F,  1, 2, 1) \
    X(copy,         cd_key_copy,       -3, CD_W,      1, 2, 1) \
    X(touch,        cd_key_exists,     -2, CD_R | CD_F,  1, -1, 1) \
    X(expire,       cd_key_expire,     -3, CD_W | CD_F,  1, 1, 1) \
    X(pexpire,      cd_key_pexpire,    -3, CD_W | CD_F,  1, 1, 1) \
    X(expireat,     cd_key_expireat,   -3, CD_W | CD_F,  1, 1, 1) \
    X(pexpireat,    cd_key_pexpireat,  -3, CD_W | CD_F,  1, 1, 1) \
    X(ttl,          cd_key_ttl,         2, CD_R | CD_F,  1, 1, 1) \
    X(pttl,         cd_key_pttl,        2, CD_R | CD_F,  1, 1, 1) \
    X(expiretime,   cd_key_expiretime,  2, CD_R | CD_F,  1, 1, 1) \
    X(pexpiretime,  cd_key_pexpiretime, 2, CD_R | CD_F,  1, 1, 1) \
    X(persist,      cd_key_persist,     2, CD_W | CD_F,  1, 1, 1) \
    X(object,       cd_key_object,     -2, CD_R,      2, 2, 1) \
    X(dbsize,       cd_key_dbsize,      1, CD_R | CD_F,  0, 0, 0) \
    X(flushdb,      cd_key_flushdb,    -1, CD_W,      0, 0, 0) \
    X(flushall,     cd_key_flushall,   -1, CD_W,      0, 0, 0) \
    X(move,         cd_key_move,        3, CD_W | CD_F,  1, 1, 1) \
    X(swapdb,       cd_key_swapdb,      3, CD_W | CD_F,  0, 0, 0) \
    /* connection and server */ \
    X(ping,         cd_srv_ping,       -1, CD_F,      0, 0, 0) \
    X(echo,         cd_srv_echo,        2, CD_F,      0, 0, 0) \
    X(quit,         cd_srv_quit,       -1, CD_NA | CD_NQ | CD_F, 0, 0, 0) \
    X(hello,        cd_srv_hello,      -1, CD_NA | CD_F, 0, 0, 0) \
    X(auth,         cd_srv_auth,       -2, CD_NA | CD_F, 0, 0, 0) \
    X(select,       cd_srv_select,      2, CD_F,      0, 0, 0) \
    X(client,       cd_srv_client,     -2, 0,      0, 0, 0) \
    X(command,      cd_srv_command,    -1, 0,      0, 0, 0) \
    X(config,       cd_info_config,    -2, CD_AD,     0, 0, 0) \
    X(info,         cd_info_info,      -1, 0,      0, 0, 0) \
    X(time,         cd_srv_time,        1, CD_F,      0, 0, 0) \
    X(save,         cd_srv_save,        1, CD_AD | CD_NM, 0, 0, 0) \
    X(bgsave,       cd_srv_bgsave,     -1, CD_AD,     0, 0, 0) \
    X(bgrewriteaof, cd_srv_bgrewriteaof, 1, CD_AD,    0, 0, 0) \
    X(lastsave,     cd_srv_lastsave,    1, CD_F,      0, 0, 0) \
    X(wait,         cd_srv_wait,        3, 0,      0, 0, 0) \
    X(shutdown,     cd_srv_shutdown,   -1, CD_AD | CD_NM, 0, 0, 0) \
    X(function,     cd_srv_function,   -2, 0,      0, 0, 0) \
    X(reset,        cd_srv_reset,       1, CD_NA | CD_NQ | CD_F, 0, 0, 0) \
    /* transactions */ \
    X(multi,        cd_multi_multi,     1, CD_NQ | CD_F, 0, 0, 0) \
    X(exec,         cd_multi_exec,      1, CD_NQ,     0, 0, 0) \
    X(discard,      cd_multi_discard,   1, CD_NQ | CD_F, 0, 0, 0) \
    X(watch,        cd_multi_watch,    -2, CD_NQ | CD_F, 1, -1, 1) \
    X(unwatch,      cd_multi_unwatch,   1, CD_F,      0, 0, 0)

#define CD_DECLARE_(name, fn, arity, flags, fk, lk, st) cd_cmd_fn fn;
CD_COMMANDS(CD_DECLARE_)
#undef CD_DECLARE_

#endif
