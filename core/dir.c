/* dir.c - the recipient directory: parses the users, groups, aliases and
 * lists files into one immutable snapshot (a string arena plus an
 * open-addressing hash table keyed by the ASCII-folded address).
 * dir_load*() and dir_free() run on the main thread; once a snapshot is
 * published every lookup is lock-free and allocation-free on any thread. */
#include "dir.h"
#include "util.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Table layout: a power-of-two array of slots, linear probing, load factor
 * at most 1/DIR_LOAD_INV (sized from the total line count before parsing,
 * so probing always ends at an empty slot). A slot is empty when
 * files == 0. The folded key lives NUL-terminated in the arena at key_off;
 * a user's password hash follows right after that NUL (the users file is
 * parsed first, so a key with the user bit is always the user line's own).
 * Targets are kept as written; spans[i]..spans[i+1] index targets[]. */
#define DIR_LOAD_INV 2
#define DIR_MIN_SLOTS 16
#define DIR_NO_SPAN UINT32_MAX
#define DIR_OFF_MAX UINT32_MAX     /* arena offsets are 32-bit */
#define DIR_DES_LEN 13             /* traditional DES crypt(3) hash */
#define DIR_CRYPT_MIN 3            /* "$id$" style hash: at least "$x$" */
#define DIR_HUGE ((size_t)2 << 20) /* x86-64 transparent huge page */
#define DIR_WHY_MAX (DIR_ADDR_MAX + 64)
#define DIR_PEEK_MAX (2 * DIR_ADDR_MAX) /* bytes a prefetch scans for ':' */
#define DIR_STR_(x) #x
#define DIR_STR(x) DIR_STR_(x)

/* File indices (enum dir_kind - DIR_USER), also the strength order. */
enum { DIR_F_USERS = 0, DIR_F_GROUPS, DIR_F_ALIASES, DIR_F_LISTS };

struct dir_slot {
    uint32_t tag;     /* high 32 bits of the key's hash */
    uint32_t key_off; /* folded key in the arena */
    uint32_t span;    /* strongest target list, or DIR_NO_SPAN */
    uint16_t key_len;
    uint8_t files; /* bit (1 << DIR_F_*) for every file naming the key */
    uint8_t unused;
};
_Static_assert(sizeof(struct dir_slot) == 16, "four slots per cache line");
_Static_assert(DIR_ADDR_MAX <= UINT16_MAX, "key_len is 16-bit");

struct dir {
    char *arena;
    size_t arena_bytes; /* mapping size, for dir_vm_free */
    struct dir_slot *slots;
    size_t slots_bytes;
    size_t mask; /* slot count - 1 */
    size_t count;
    const char **targets;
    uint32_t *spans; /* one start per span plus a sentinel */
    bool configured;
};

/* dir_u32v - growable array of 32-bit offsets used while building. */
struct dir_u32v {
    uint32_t *v;
    size_t n, cap;
};

/* dir_buf - bytes in a dir_vm_alloc() mapping (the arena). */
struct dir_buf {
    char *p;
    size_t len, cap;
};

/* dir_region - where a file's raw bytes were placed in the arena (they are
 * parsed in place); name == NULL when the file is not configured. */
struct dir_region {
    const char *name;
    size_t off, len;
};

/* dir_build - everything a load in progress owns. The arena and the table
 * are sized once, up front, from the total size and line count. */
struct dir_build {
    struct dir_buf arena;
    struct dir_slot *slots;
    size_t cap; /* slots allocated, a power of two */
    size_t slots_bytes;
    size_t count;
    struct dir_u32v toffs; /* arena offset of every stored target */
    struct dir_u32v spans;
    const char *why; /* reason of the last failure */
    char whybuf[DIR_WHY_MAX];
};

/* ---- hashing and comparison over ASCII-folded bytes ---------------- */

#define DIR_ONES 0x0101010101010101ULL
#define DIR_HIGHS 0x8080808080808080ULL
#define DIR_SEED 0x9e3779b97f4a7c15ULL
#define DIR_MUL 0xff51afd7ed558ccdULL
#define DIR_MUL2 0xc4ceb9fe1a85ec53ULL

/* dir_word - n (<= 8) bytes at p as one word, zero-padded. */
static inline uint64_t dir_word(const char *p, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n);
    return w;
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dir_tail() assumes a little-endian machine"
#endif

/* dir_tail - p[0..n), the last n (1..7) bytes of a len-byte string, as
 * dir_word(p, n) gives them; for len >= 8 one overlapping 8-byte read of
 * the string's end (no variable-length memcpy on the lookup path). */
static inline uint64_t dir_tail(const char *p, size_t n, size_t len)
{
    if (len >= 8)
        return dir_word(p + n - 8, 8) >> (8 * (8 - n));
    return dir_word(p, n);
}

/* dir_fold8 - ASCII lower-case eight bytes at once; bytes >= 0x80 untouched. */
static inline uint64_t dir_fold8(uint64_t w)
{
    uint64_t low7 = w & ~DIR_HIGHS;
    uint64_t ge_a = low7 + DIR_ONES * (0x80 - 'A');
    uint64_t gt_z = low7 + DIR_ONES * (0x80 - 'Z' - 1);
    uint64_t upper = ge_a & ~gt_z & ~w & DIR_HIGHS;
    return w | (upper >> 2);
}

/* dir_mix - fold one word into the running hash. */
static inline uint64_t dir_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * DIR_MUL;
    return h ^ (h >> 32);
}

/* dir_hash - 64-bit hash of the ASCII-folded bytes p[0..n). */
static uint64_t dir_hash(const char *p, size_t n)
{
    size_t len = n;
    uint64_t h = DIR_SEED ^ (n * DIR_MUL2);
    for (; n >= 8; p += 8, n -= 8)
        h = dir_mix(h, dir_fold8(dir_word(p, 8)));
    if (n)
        h = dir_mix(h, dir_fold8(dir_tail(p, n, len)));
    h ^= h >> 33;
    h *= DIR_MUL2;
    return h ^ (h >> 29);
}

/* dir_key_eq - does the folded key equal addr after ASCII folding? */
static bool dir_key_eq(const char *key, const char *addr, size_t n)
{
    size_t len = n;
    for (; n >= 8; key += 8, addr += 8, n -= 8)
        if (dir_word(key, 8) != dir_fold8(dir_word(addr, 8)))
            return false;
    return n == 0 || dir_tail(key, n, len) == dir_fold8(dir_tail(addr, n, len));
}

/* dir_probe - index of addr's slot, or of the empty slot ending its chain. */
static size_t dir_probe(const struct dir_slot *slots, size_t mask, const char *arena,
                        const char *addr, size_t len, uint64_t h)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct dir_slot *s = &slots[i];
        if (!s->files)
            return i;
        if (s->tag == tag && s->key_len == len && dir_key_eq(arena + s->key_off, addr, len))
            return i;
    }
}

/* ---- syntax checks -------------------------------------------------- */

/* dir_is_blank - blanks trimmed around lines and fields (CR for CRLF files). */
static inline bool dir_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* dir_trim - drop surrounding blanks from [*p, *p + *n). */
static void dir_trim(const char **p, size_t *n)
{
    while (*n && dir_is_blank(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && dir_is_blank((*p)[*n - 1]))
        (*n)--;
}

/* dir_check_addr - NULL if a is a plausible local@domain, else why not. */
static const char *dir_check_addr(const char *a, size_t n)
{
    if (n == 0)
        return "empty";
    if (n > DIR_ADDR_MAX)
        return "longer than " DIR_STR(DIR_ADDR_MAX) " octets";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= ' ' || c == 0x7f)
            return "space or control character";
    }
    const char *at = memrchr(a, '@', n);
    if (!at)
        return "no '@'";
    if (at == a)
        return "empty local part";
    if (at == a + n - 1)
        return "empty domain";
    return NULL;
}

/* dir_is_b64 - crypt(3)'s base-64 alphabet [./0-9A-Za-z]. */
static inline bool dir_is_b64(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '.' ||
           c == '/';
}

/* dir_is_crypt - bytes of "$id$param=v,...$salt$hash" style hashes. */
static inline bool dir_is_crypt(unsigned char c)
{
    return dir_is_b64(c) || c == '$' || c == '=' || c == ',' || c == '-';
}

/* dir_check_hash - NULL if h looks like a crypt(3) hash (or a locked one:
 * '*' or '!' then any printable ASCII but ':'), else why not. */
static const char *dir_check_hash(const char *h, size_t n)
{
    if (n == 0)
        return "empty password hash";
    bool locked = h[0] == '*' || h[0] == '!';
    bool ok = locked || h[0] == '$' || n == DIR_DES_LEN;
    if (h[0] == '$' && n < DIR_CRYPT_MIN)
        ok = false;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (locked)
            ok = c > ' ' && c < 0x7f && c != ':';
        else
            ok = h[0] == '$' ? dir_is_crypt(c) : dir_is_b64(c);
    }
    return ok ? NULL : "bad password hash";
}

/* ---- memory ---------------------------------------------------------- */

/* dir_vm_alloc - *n zeroed bytes from mmap (*n > 0, rounded up to the
 * mapping size). Large blocks are 2 MiB-aligned and asked for transparent
 * huge pages: a million entries are ~170 MB touched at random, and with
 * 4 KiB pages every lookup would be a TLB miss and a load ~40k faults. */
static void *dir_vm_alloc(size_t *n)
{
    bool huge = *n >= DIR_HUGE;
    size_t align = huge ? DIR_HUGE : (size_t)sysconf(_SC_PAGESIZE);
    size_t len, map;
    if (!mx_add_ok(*n, align - 1, &len))
        return errno = ENOMEM, NULL;
    len &= ~(align - 1);
    map = len;
    if (huge && !mx_add_ok(len, DIR_HUGE, &map)) /* room to align */
        return errno = ENOMEM, NULL;
    char *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (huge) {
        char *a = (char *)(((uintptr_t)p + DIR_HUGE - 1) & ~(uintptr_t)(DIR_HUGE - 1));
        if (a > p)
            munmap(p, (size_t)(a - p));
        if (p + map > a + len)
            munmap(a + len, (size_t)(p + map - (a + len)));
        madvise(a, len, MADV_HUGEPAGE); /* a hint: fine if THP is off */
        p = a;
    }
    *n = len;
    return p;
}

/* dir_vm_free - release a dir_vm_alloc() block of n (as returned) bytes. */
static void dir_vm_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

/* ---- building ------------------------------------------------------- */

/* dir_fail - record why the current line is bad; returns false. */
static bool dir_fail(struct dir_build *b, const char *why)
{
    b->why = why;
    return false;
}

/* dir_failf - dir_fail with formatted text. */
__attribute__((format(printf, 2, 3))) static bool dir_failf(struct dir_build *b, const char *fmt,
                                                            ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->whybuf, sizeof b->whybuf, fmt, ap);
    va_end(ap);
    return dir_fail(b, b->whybuf);
}

/* dir_u32_push - append x; false on ENOMEM. */
static bool dir_u32_push(struct dir_u32v *v, uint32_t x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint32_t *p = reallocarray(v->v, cap, sizeof *p);
        if (!p)
            return false;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

/* dir_put - append p[0..n) and a NUL to the arena. Parsing is in place:
 * each file's raw bytes sit in the arena (plus one spare byte) and no line
 * stores more than its own length + 1 (separators become NULs), so output
 * never passes the line being read; hence memmove. Checked anyway. */
static bool dir_put(struct dir_build *b, const char *p, size_t n)
{
    struct dir_buf *a = &b->arena;
    if (n >= a->cap - a->len || a->p + a->len > p)
        return dir_fail(b, "internal error: arena overrun");
    memmove(a->p + a->len, p, n);
    a->p[a->len + n] = 0;
    a->len += n + 1;
    return true;
}

/* dir_count_lines - lines in p[0..n) (a last line without '\n' counts). */
static size_t dir_count_lines(const char *p, size_t n)
{
    size_t lines = 1;
    for (const char *end = p + n; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        lines++;
    return lines;
}

/* dir_arena_init - map an arena of bytes (the files' sizes + 1 each). */
static bool dir_arena_init(struct dir_build *b, size_t bytes, char *err, size_t errlen)
{
    b->arena.cap = bytes + 1;
    if (bytes >= DIR_OFF_MAX || !(b->arena.p = dir_vm_alloc(&b->arena.cap))) {
        snprintf(err, errlen,
                 bytes >= DIR_OFF_MAX ? "directory: larger than 4 GiB"
                                      : "directory: out of memory");
        return false;
    }
    return true;
}

/* dir_table_init - size the table for every line of the placed files. */
static bool dir_table_init(struct dir_build *b, const struct dir_region reg[DIR_FILES], char *err,
                           size_t errlen)
{
    size_t lines = 0, cap = DIR_MIN_SLOTS;
    for (unsigned f = 0; f < DIR_FILES; f++)
        if (reg[f].name)
            lines += dir_count_lines(b->arena.p + reg[f].off, reg[f].len);
    while (cap / DIR_LOAD_INV < lines)
        cap *= 2;
    b->cap = cap;
    b->slots_bytes = cap * sizeof *b->slots;
    if (!(b->slots = dir_vm_alloc(&b->slots_bytes))) {
        snprintf(err, errlen, "directory: out of memory");
        return false;
    }
    return true;
}

/* dir_add_key - move addr to the arena's end and enter it for file f; *out
 * is its slot (new, or the entry a stronger file already made). The stored
 * key is folded once it is known to be new. */
static bool dir_add_key(struct dir_build *b, unsigned f, const char *addr, size_t len,
                        struct dir_slot **out)
{
    size_t off = b->arena.len;
    if (!dir_put(b, addr, len))
        return false;
    char *key = b->arena.p + off;
    uint64_t h = dir_hash(key, len);
    struct dir_slot *s = &b->slots[dir_probe(b->slots, b->cap - 1, b->arena.p, key, len, h)];
    *out = s;
    if (s->files & (1u << f))
        return dir_failf(b, "duplicate address '%.*s'", (int)len, key);
    if (s->files) { /* key already stored by a stronger file */
        s->files |= (uint8_t)(1u << f);
        b->arena.len = off;
        return true;
    }
    for (size_t i = 0; i < len; i++)
        key[i] = (char)mx_ascii_lower((unsigned char)key[i]);
    *s = (struct dir_slot){.tag = (uint32_t)(h >> 32),
                           .key_off = (uint32_t)off,
                           .span = DIR_NO_SPAN,
                           .key_len = (uint16_t)len,
                           .files = (uint8_t)(1u << f)};
    b->count++;
    return true;
}

/* dir_add_user - "address:hash" already split and trimmed. */
static bool dir_add_user(struct dir_build *b, const char *addr, size_t alen, const char *hash,
                         size_t hlen)
{
    const char *why = dir_check_hash(hash, hlen);
    if (why)
        return dir_fail(b, why);
    struct dir_slot *s;
    return dir_add_key(b, DIR_F_USERS, addr, alen, &s) && dir_put(b, hash, hlen);
}

/* dir_add_targets - check "t, t, ..." and, if the entry has no targets from
 * a stronger file yet, store them as its span. */
static bool dir_add_targets(struct dir_build *b, struct dir_slot *s, const char *p, size_t n)
{
    bool keep = s->span == DIR_NO_SPAN;
    if (n == 0)
        return dir_fail(b, "no targets");
    if (keep) {
        if (!dir_u32_push(&b->spans, (uint32_t)b->toffs.n))
            return dir_fail(b, "out of memory");
        s->span = (uint32_t)(b->spans.n - 1);
    }
    for (const char *end = p + n;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *t = p;
        size_t tn = (size_t)((comma ? comma : end) - p);
        dir_trim(&t, &tn);
        const char *why = dir_check_addr(t, tn);
        if (why)
            return dir_failf(b, "bad target: %s", why);
        if (keep && !dir_u32_push(&b->toffs, (uint32_t)b->arena.len))
            return dir_fail(b, "out of memory");
        if (keep && !dir_put(b, t, tn))
            return false;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

/* dir_parse_line - one raw line (no '\n') of file f. */
static bool dir_parse_line(struct dir_build *b, unsigned f, const char *p, size_t n)
{
    dir_trim(&p, &n);
    if (n == 0 || p[0] == '#')
        return true;
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return dir_fail(b, "missing ':'");
    const char *addr = p, *rest = colon + 1;
    size_t alen = (size_t)(colon - p), rlen = n - alen - 1;
    dir_trim(&addr, &alen);
    dir_trim(&rest, &rlen);
    const char *why = dir_check_addr(addr, alen);
    if (why)
        return dir_failf(b, "bad address: %s", why);
    if (f == DIR_F_USERS)
        return dir_add_user(b, addr, alen, rest, rlen);
    struct dir_slot *s;
    return dir_add_key(b, f, addr, alen, &s) && dir_add_targets(b, s, rest, rlen);
}

/* dir_prefetch_line - start fetching the slot of the line at p: table
 * inserts are random DRAM accesses, so overlap the next one with this
 * line's parsing. A guess only (no validation); a wrong one costs nothing. */
static void dir_prefetch_line(const struct dir_build *b, const char *p, const char *end)
{
    size_t room = (size_t)(end - p);
    const char *colon = memchr(p, ':', room < DIR_PEEK_MAX ? room : DIR_PEEK_MAX);
    if (!colon)
        return;
    size_t n = (size_t)(colon - p);
    dir_trim(&p, &n);
    if (n)
        __builtin_prefetch(&b->slots[dir_hash(p, n) & (b->cap - 1)], 1);
}

/* dir_parse_file - every line of src as file f; err names file and line. */
static bool dir_parse_file(struct dir_build *b, unsigned f, const struct dir_source *src, char *err,
                           size_t errlen)
{
    const char *p = src->data, *end = p + src->len;
    for (size_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if (nl)
            dir_prefetch_line(b, nl + 1, end);
        if (!dir_parse_line(b, f, p, (size_t)(eol - p))) {
            snprintf(err, errlen, "%s:%zu: %s", src->name, line, b->why);
            return false;
        }
        p = eol + (nl != NULL);
    }
    return true;
}

/* dir_build_free - drop a load in progress. */
static void dir_build_free(struct dir_build *b)
{
    dir_vm_free(b->arena.p, b->arena.cap);
    dir_vm_free(b->slots, b->slots_bytes);
    free(b->toffs.v);
    free(b->spans.v);
}

/* dir_finish - turn a complete build into a snapshot (b is consumed). */
static struct dir *dir_finish(struct dir_build *b, bool configured)
{
    struct dir *d = calloc(1, sizeof *d);
    const char **targets = NULL;
    if (!d || !dir_u32_push(&b->spans, (uint32_t)b->toffs.n) ||
        (b->toffs.n && !(targets = calloc(b->toffs.n, sizeof *targets)))) {
        free(d);
        dir_build_free(b);
        return NULL;
    }
    for (size_t i = 0; i < b->toffs.n; i++)
        targets[i] = b->arena.p + b->toffs.v[i];
    free(b->toffs.v);
    *d = (struct dir){.arena = b->arena.p,
                      .arena_bytes = b->arena.cap,
                      .slots = b->slots,
                      .slots_bytes = b->slots_bytes,
                      .mask = b->cap - 1,
                      .count = b->count,
                      .targets = targets,
                      .spans = b->spans.v,
                      .configured = configured};
    return d;
}

/* dir_parse_all - size the table, then parse every placed file in order. */
static struct dir *dir_parse_all(struct dir_build *b, const struct dir_region reg[DIR_FILES],
                                 char *err, size_t errlen)
{
    bool configured = false;
    bool ok = dir_table_init(b, reg, err, errlen);
    for (unsigned f = 0; ok && f < DIR_FILES; f++) {
        if (!reg[f].name)
            continue;
        configured = true;
        struct dir_source src = {reg[f].name, b->arena.p + reg[f].off, reg[f].len};
        ok = dir_parse_file(b, f, &src, err, errlen);
    }
    if (!ok) {
        dir_build_free(b);
        return NULL;
    }
    struct dir *d = dir_finish(b, configured);
    if (!d)
        snprintf(err, errlen, "directory: out of memory");
    return d;
}

struct dir *dir_load_mem(const struct dir_source src[DIR_FILES], char *err, size_t errlen)
{
    struct dir_build b = {0};
    struct dir_region reg[DIR_FILES] = {{0}};
    size_t bytes = 0;
    for (unsigned f = 0; f < DIR_FILES; f++) {
        if (!src[f].data)
            continue;
        reg[f] = (struct dir_region){src[f].name ? src[f].name : "", bytes, src[f].len};
        if (!mx_add_ok(bytes, src[f].len, &bytes) || !mx_add_ok(bytes, 1, &bytes))
            bytes = SIZE_MAX;
    }
    if (!dir_arena_init(&b, bytes, err, errlen))
        return NULL;
    for (unsigned f = 0; f < DIR_FILES; f++)
        if (reg[f].len)
            memcpy(b.arena.p + reg[f].off, src[f].data, reg[f].len);
    return dir_parse_all(&b, reg, err, errlen);
}

/* ---- files ---------------------------------------------------------- */

/* dir_read_region - read fd (of size reg->len at open) to its region; a
 * file that grew since is an error: the arena was sized from fstat. */
static bool dir_read_region(int fd, struct dir_build *b, struct dir_region *reg, char *err,
                            size_t errlen)
{
    size_t got = 0;
    char extra;
    for (;;) {
        char *dst = got < reg->len ? b->arena.p + reg->off + got : &extra;
        ssize_t r = read(fd, dst, got < reg->len ? reg->len - got : 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            snprintf(err, errlen, "%s: %s", reg->name, strerror(errno));
        else if (r > 0 && dst == &extra)
            snprintf(err, errlen, "%s: changed while being read, try again", reg->name);
        if (r < 0 || (r > 0 && dst == &extra))
            return false;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    reg->len = got;
    return true;
}

/* dir_open_all - open the configured files and note their sizes. */
static bool dir_open_all(const char *const paths[DIR_FILES], int fds[DIR_FILES],
                         struct dir_region reg[DIR_FILES], size_t *total, char *err, size_t errlen)
{
    size_t bytes = 0;
    for (unsigned f = 0; f < DIR_FILES; f++) {
        struct stat st;
        if (!paths[f])
            continue;
        fds[f] = open(paths[f], O_RDONLY | O_CLOEXEC);
        if (fds[f] < 0 || fstat(fds[f], &st) < 0) {
            snprintf(err, errlen, "%s: %s", paths[f], strerror(errno));
            return false;
        }
        size_t len = S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
        reg[f] = (struct dir_region){paths[f], bytes, len};
        if (!mx_add_ok(bytes, len, &bytes) || !mx_add_ok(bytes, 1, &bytes))
            bytes = SIZE_MAX;
    }
    *total = bytes;
    return true;
}

struct dir *dir_load(const char *users_file, const char *groups_file, const char *aliases_file,
                     const char *lists_file, char *err, size_t errlen)
{
    const char *const paths[DIR_FILES] = {users_file, groups_file, aliases_file, lists_file};
    int fds[DIR_FILES] = {-1, -1, -1, -1};
    struct dir_region reg[DIR_FILES] = {{0}};
    struct dir_build b = {0};
    size_t total = 0;
    bool ok = dir_open_all(paths, fds, reg, &total, err, errlen) &&
              dir_arena_init(&b, total, err, errlen);
    for (unsigned f = 0; ok && f < DIR_FILES; f++)
        ok = !paths[f] || dir_read_region(fds[f], &b, &reg[f], err, errlen);
    for (unsigned f = 0; f < DIR_FILES; f++)
        if (fds[f] >= 0)
            close(fds[f]);
    if (!ok) {
        dir_build_free(&b);
        return NULL;
    }
    return dir_parse_all(&b, reg, err, errlen);
}

void dir_free(struct dir *d)
{
    if (!d)
        return;
    dir_vm_free(d->arena, d->arena_bytes);
    dir_vm_free(d->slots, d->slots_bytes);
    free(d->targets);
    free(d->spans);
    free(d);
}

/* ---- lookups (any thread) ------------------------------------------ */

/* dir_find - the slot of addr, or NULL. */
static const struct dir_slot *dir_find(const struct dir *d, const char *addr, size_t len)
{
    if (!d || !d->count || !addr || len == 0 || len > DIR_ADDR_MAX)
        return NULL;
    const struct dir_slot *s =
        &d->slots[dir_probe(d->slots, d->mask, d->arena, addr, len, dir_hash(addr, len))];
    return s->files ? s : NULL;
}

bool dir_configured(const struct dir *d)
{
    return d && d->configured;
}

enum dir_kind dir_lookup(const struct dir *d, const char *addr, size_t len)
{
    const struct dir_slot *s = dir_find(d, addr, len);
    return s ? (enum dir_kind)(DIR_USER + __builtin_ctz(s->files)) : DIR_NOT_FOUND;
}

const char *dir_kind_name(enum dir_kind k)
{
    static const char *const names[] = {
        [DIR_NOT_FOUND] = "",    [DIR_USER] = "Users", [DIR_GROUP] = "Groups",
        [DIR_ALIAS] = "Aliases", [DIR_LIST] = "Lists",
    };
    return (unsigned)k < MX_ARRAY_LEN(names) ? names[k] : "";
}

const char *dir_user_hash(const struct dir *d, const char *addr, size_t len)
{
    const struct dir_slot *s = dir_find(d, addr, len);
    if (!s || !(s->files & (1u << DIR_F_USERS)))
        return NULL;
    return d->arena + s->key_off + s->key_len + 1;
}

const char *const *dir_targets(const struct dir *d, const char *addr, size_t len, size_t *n)
{
    const struct dir_slot *s = dir_find(d, addr, len);
    size_t count = 0;
    const char *const *t = NULL;
    if (s && s->span != DIR_NO_SPAN) {
        count = d->spans[s->span + 1] - d->spans[s->span];
        t = d->targets + d->spans[s->span];
    }
    if (n)
        *n = count;
    return t;
}

size_t dir_count(const struct dir *d)
{
    return d ? d->count : 0;
}

bool dir_user_locked(const struct dir *d, const char *addr, size_t len)
{
    const char *h = dir_user_hash(d, addr, len);
    return h && (h[0] == '*' || h[0] == '!');
}

bool dir_user_verify(const struct dir *d, const char *addr, size_t len, const char *password)
{
    const char *h = dir_user_hash(d, addr, len);
    if (!h || !password || h[0] == '*' || h[0] == '!')
        return false;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *out = crypt_r(password, h, cd);
    size_t hl = strlen(h);
    unsigned char diff = !out || strlen(out) != hl;
    if (!diff)
        for (size_t i = 0; i < hl; i++) /* no early exit on a mismatch */
            diff |= (unsigned char)(out[i] ^ h[i]);
    free(cd);
    return !diff;
}

const char *dir_sample_hash(const struct dir *d)
{
    for (size_t i = 0; d && d->slots && i <= d->mask; i++) {
        const struct dir_slot *s = &d->slots[i];
        if (s->key_len == 0 || !(s->files & (1u << DIR_F_USERS)))
            continue;
        const char *h = d->arena + s->key_off + s->key_len + 1;
        if (h[0] != '*' && h[0] != '!')
            return h;
    }
    return NULL;
}
