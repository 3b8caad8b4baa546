/* A CloudTrail document scanner that writes Arrow buffers, not Python objects.
 *
 * Scanner(spec).add(document, fallback) walks a {"Records": [...]} document once and
 * appends each record's values to per-column buffers laid out as Arrow arrays
 * (string_view views + data, validity bitmaps, list offsets). Free-form payloads are
 * copied as their exact bytes. Members the schema does not know are written to the
 * ``unmapped`` column as the Python path writes them (see parse_object). A record it does
 * not handle (a value of an unexpected type, an escaped or repeated key) is handed to
 * ``fallback(span, position)``,
 * the careful Python path, which returns the record re-encoded in the schema's own
 * shape plus its ``unmapped`` text (or None: the record is a problem, not a row).
 * Anything it cannot vouch for as valid JSON makes ``add`` undo the document and
 * return None, so the caller's own decoder sees it unchanged.
 *
 * spec: ("text",) | ("raw",) | ("struct", ((key, spec), ...)) | ("list", spec)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { K_TEXT, K_RAW, K_STRUCT, K_LIST };
/* What a step of the walk came to. The walk runs without the GIL, so it sets no Python
 * error itself: FAIL (an error is set) comes only from the fallback's call, which holds it. */
enum { OK = 0, BAIL = 1, SYNTAX = 2, FAIL = 3, NOMEM = 4, TOOBIG = 5 };

#define MAX_FIELDS 64
#define MAX_DEPTH 512
#define MAX_DATA ((Py_ssize_t)1 << 30)

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    Py_ssize_t hint; /* the capacity to start from: what the last chunk needed */
} Buf;

#define MAX_HINT ((Py_ssize_t)16 << 20) /* past this, doubling costs little (mremap) */

typedef struct Node {
    int kind;
    int nfields;
    struct Node **fields;
    char **keys;
    Py_ssize_t *keylens;
    struct Node *child;
    Py_ssize_t length, nulls;
    Buf validity, views, data, offsets;
} Node;

typedef struct {
    Py_ssize_t length, nulls, data;
} Mark;

typedef struct {
    PyObject_HEAD
    Node *root;
    Node *unmapped;
    Node **all;
    int nall;
    Mark *record_mark, *document_mark;
    Buf rest; /* the unmapped text of the record being read */
    PyThreadState *thread; /* while add() walks without the GIL */
    int busy;
} Scanner;

/* --- buffers ------------------------------------------------------------------------ */

static int grow(Buf *b, Py_ssize_t extra, int zeroed) {
    Py_ssize_t cap = b->cap ? b->cap : b->hint > 1024 ? b->hint : 1024;
    while (cap < b->len + extra) cap *= 2;
    char *p = !b->p && zeroed ? calloc(1, (size_t)cap) : realloc(b->p, (size_t)cap);
    if (!p) return -1;
    if (zeroed && b->p) memset(p + b->cap, 0, (size_t)(cap - b->cap));
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int reserve(Buf *b, Py_ssize_t extra) {
    return b->len + extra <= b->cap ? 0 : grow(b, extra, 0);
}

/* Validity bitmaps and string views are zero past their length (``zero_past``): a null is
 * then only a longer length, no write. Nulls are most of a record's leaves (most of a wide
 * schema's optional members are absent), so writing each one cost 17% of a walk. */
static inline int reserve_zeroed(Buf *b, Py_ssize_t extra) {
    return b->len + extra <= b->cap ? 0 : grow(b, extra, 1);
}

/* Restore the zeros past ``length`` rows after a shorter length is set (undo, reset). */
static void zero_past(Node *n, Py_ssize_t length, Py_ssize_t validity_bytes,
                      Py_ssize_t view_bytes) {
    Py_ssize_t byte = length >> 3;
    if (n->validity.p && byte < validity_bytes) {
        if (length & 7) n->validity.p[byte++] &= (char)((1u << (length & 7)) - 1);
        memset(n->validity.p + byte, 0, (size_t)(validity_bytes - byte));
    }
    if (n->views.p && length * 16 < view_bytes)
        memset(n->views.p + length * 16, 0, (size_t)(view_bytes - length * 16));
}

static inline int push_bit(Node *n, int valid) {
    Py_ssize_t byte = n->length >> 3;
    if (byte >= n->validity.len) {
        if (reserve_zeroed(&n->validity, 1) < 0) return -1;
        n->validity.len = byte + 1;
    }
    if (valid)
        n->validity.p[byte] |= (char)(1u << (n->length & 7));
    else
        n->nulls++;
    return 0;
}

static int push_offset(Node *n, int32_t value) {
    if (reserve(&n->offsets, 4) < 0) return -1;
    memcpy(n->offsets.p + n->offsets.len, &value, 4);
    n->offsets.len += 4;
    return 0;
}

/* A string_view of ``len`` bytes already at data[data.len]: inline if short, else kept. */
static int push_view_of_data(Node *n, Py_ssize_t len) {
    if (reserve_zeroed(&n->views, 16) < 0) return -1;
    char *view = n->views.p + n->views.len;
    int32_t length = (int32_t)len;
    memset(view, 0, 16);
    memcpy(view, &length, 4);
    const char *bytes = n->data.p + n->data.len;
    if (len <= 12) {
        if (len) memcpy(view + 4, bytes, (size_t)len);
    } else {
        int32_t offset = (int32_t)n->data.len;
        memcpy(view + 4, bytes, 4);
        memcpy(view + 12, &offset, 4);
        n->data.len += len;
    }
    n->views.len += 16;
    n->length++;
    return 0;
}

/* Up to 12 bytes without a call to memcpy: overlapping fixed-size copies within [0, len). */
static inline void copy_short(char *to, const char *from, Py_ssize_t len) {
    if (len >= 8) {
        memcpy(to, from, 8);
        memcpy(to + len - 8, from + len - 8, 8);
    } else if (len >= 4) {
        memcpy(to, from, 4);
        memcpy(to + len - 4, from + len - 4, 4);
    } else if (len) {
        to[0] = from[0];
        to[len / 2] = from[len / 2];
        to[len - 1] = from[len - 1];
    }
}

/* A string value: OK, NOMEM, or TOOBIG (the column would outgrow a chunk). */
static int push_bytes(Node *n, const char *s, Py_ssize_t len) {
    if (len <= 12) { /* inline in its view: nothing in the data buffer */
        if (push_bit(n, 1) < 0 || reserve_zeroed(&n->views, 16) < 0) return NOMEM;
        char *view = n->views.p + n->views.len;
        int32_t length = (int32_t)len;
        memset(view, 0, 16);
        memcpy(view, &length, 4);
        copy_short(view + 4, s, len);
        n->views.len += 16;
        n->length++;
        return OK;
    }
    if (n->data.len + len > MAX_DATA) return TOOBIG;
    if (reserve(&n->data, len) < 0 || push_bit(n, 1) < 0) return NOMEM;
    memcpy(n->data.p + n->data.len, s, (size_t)len);
    return push_view_of_data(n, len) < 0 ? NOMEM : OK;
}

static int push_null(Node *n) {
    if (push_bit(n, 0) < 0) return -1;
    switch (n->kind) {
    case K_TEXT:
    case K_RAW: /* its view is zero already */
        if (reserve_zeroed(&n->views, 16) < 0) return -1;
        n->views.len += 16;
        break;
    case K_STRUCT:
        for (int i = 0; i < n->nfields; i++)
            if (push_null(n->fields[i]) < 0) return -1;
        break;
    case K_LIST:
        if (push_offset(n, (int32_t)n->child->length) < 0) return -1;
        break;
    }
    n->length++;
    return 0;
}

/* --- JSON ----------------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
} Cur;

static inline void skip_ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int read_hex4(const char *p) {
    return (hexval(p[0]) << 12) | (hexval(p[1]) << 8) | (hexval(p[2]) << 4) | hexval(p[3]);
}

/* c->p at the opening quote; leaves it after the closing one. [*start, *stop) is the body. */
static int scan_string(Cur *c, const char **start, const char **stop, int *escaped) {
    const char *p = c->p + 1, *end = c->end;
    *start = p;
    *escaped = 0;
    for (;;) {
#if defined(__SSE2__)
        /* 16 bytes at a time to the next quote, backslash or control character. */
        const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\');
        const __m128i control = _mm_set1_epi8(0x1F);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash));
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_max_epu8(v, control), control));
            int mask = _mm_movemask_epi8(hit);
            if (mask) {
                p += __builtin_ctz((unsigned)mask);
                break;
            }
            p += 16;
        }
#endif
        while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
        if (p >= end) return SYNTAX;
        if (*p == '"') break;
        if (*p != '\\') return SYNTAX; /* a raw control character */
        *escaped = 1;
        if (p + 1 >= end) return SYNTAX;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u': {
            /* Surrogates must pair (msgspec checks them even in spans it does not decode). */
            if (p + 6 > end) return SYNTAX;
            for (int i = 2; i < 6; i++)
                if (hexval(p[i]) < 0) return SYNTAX;
            int cp = read_hex4(p + 2);
            p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return SYNTAX;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p + 6 > end || p[0] != '\\' || p[1] != 'u') return SYNTAX;
                for (int i = 2; i < 6; i++)
                    if (hexval(p[i]) < 0) return SYNTAX;
                int low = read_hex4(p + 2);
                if (low < 0xDC00 || low > 0xDFFF) return SYNTAX;
                p += 6;
            }
            break;
        }
        default:
            return SYNTAX;
        }
    }
    *stop = p;
    c->p = p + 1;
    return OK;
}

/* Unescape a validated string body into out (room: stop - start); -1 if a surrogate is alone. */
static Py_ssize_t unescape(const char *p, const char *stop, char *out) {
    char *o = out;
    while (p < stop) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp = (uint32_t)read_hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p + 6 > stop || p[0] != '\\' || p[1] != 'u') return -1;
                uint32_t low = (uint32_t)read_hex4(p + 2);
                if (low < 0xDC00 || low > 0xDFFF) return -1;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: *o++ = e; break; /* " \ / */
        }
    }
    return o - out;
}

/* The decoded value of a JSON string as a column value. */
static int push_string(Node *n, Cur *c) {
    const char *start, *stop;
    int escaped, rc = scan_string(c, &start, &stop, &escaped);
    if (rc != OK) return rc;
    Py_ssize_t len = stop - start;
    if (!escaped) return push_bytes(n, start, len);
    if (n->data.len + len > MAX_DATA) return TOOBIG;
    if (reserve(&n->data, len) < 0) return NOMEM;
    Py_ssize_t decoded = unescape(start, stop, n->data.p + n->data.len);
    if (decoded < 0) return BAIL;
    if (push_bit(n, 1) < 0 || push_view_of_data(n, decoded) < 0) return NOMEM;
    return OK;
}

static int skip_number(Cur *c) {
    const char *p = c->p, *end = c->end;
    if (p < end && *p == '-') p++;
    if (p >= end) return SYNTAX;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return SYNTAX;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return SYNTAX;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return SYNTAX;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    c->p = p;
    return OK;
}

static int skip_literal(Cur *c, const char *word, Py_ssize_t len) {
    if (c->end - c->p < len || memcmp(c->p, word, (size_t)len) != 0) return SYNTAX;
    c->p += len;
    return OK;
}

/* Validate and pass over any JSON value. */
static int skip_value(Cur *c, int depth) {
    if (c->p >= c->end) return SYNTAX;
    const char *s, *e;
    int escaped, rc;
    switch (*c->p) {
    case '"':
        return scan_string(c, &s, &e, &escaped);
    case 't': return skip_literal(c, "true", 4);
    case 'f': return skip_literal(c, "false", 5);
    case 'n': return skip_literal(c, "null", 4);
    case '{':
    case '[': {
        if (depth >= MAX_DEPTH) return SYNTAX;
        char close = *c->p == '{' ? '}' : ']';
        int object = close == '}';
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return OK;
        }
        for (;;) {
            if (object) {
                if (c->p >= c->end || *c->p != '"') return SYNTAX;
                if ((rc = scan_string(c, &s, &e, &escaped)) != OK) return rc;
                skip_ws(c);
                if (c->p >= c->end || *c->p != ':') return SYNTAX;
                c->p++;
                skip_ws(c);
            }
            if ((rc = skip_value(c, depth + 1)) != OK) return rc;
            skip_ws(c);
            if (c->p >= c->end) return SYNTAX;
            if (*c->p == ',') {
                c->p++;
                skip_ws(c);
                continue;
            }
            if (*c->p != close) return SYNTAX;
            c->p++;
            return OK;
        }
    }
    default:
        return skip_number(c);
    }
}

/* --- values into columns -------------------------------------------------------------- */

/* A record's members the schema does not know, written as the Python path's ``unmapped``
 * text would be (``msgspec.json.encode`` of ``{key: raw value}`` in document order, nested
 * objects for members inside known structs, a whole known array whose elements have
 * some). ``rest`` NULL: none allowed (a re-encoded row from the fallback). */
static int append(Buf *b, const char *s, Py_ssize_t len) {
    if (reserve(b, len) < 0) return -1;
    memcpy(b->p + b->len, s, (size_t)len);
    b->len += len;
    return 0;
}

/* ``"key":`` after a comma if this object already wrote a member. */
static int append_key(Buf *b, int wrote, const char *key, Py_ssize_t len) {
    if (reserve(b, len + 4) < 0) return -1;
    char *o = b->p + b->len;
    if (wrote) *o++ = ',';
    *o++ = '"';
    memcpy(o, key, (size_t)len);
    o += len;
    *o++ = '"';
    *o++ = ':';
    b->len = o - b->p;
    return 0;
}

static int parse_object(Node *n, Cur *c, int depth, Buf *rest);

/* A value at ``depth`` (the record is 1) into column ``n``. */
static int parse_value(Node *n, Cur *c, int depth, Buf *rest) {
    if (c->p >= c->end) return SYNTAX;
    char ch = *c->p;
    if (ch == 'n') {
        if (skip_literal(c, "null", 4) != OK) return SYNTAX;
        return push_null(n) < 0 ? NOMEM : OK;
    }
    switch (n->kind) {
    case K_TEXT:
        return ch == '"' ? push_string(n, c) : BAIL;
    case K_RAW: {
        if (ch == '"') return push_string(n, c);
        const char *start = c->p;
        int rc = skip_value(c, depth);
        if (rc != OK) return rc;
        return push_bytes(n, start, c->p - start);
    }
    case K_STRUCT:
        return ch == '{' ? parse_object(n, c, depth, rest) : BAIL;
    case K_LIST: {
        if (ch != '[') return BAIL;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == ']') {
            c->p++;
        } else {
            for (;;) {
                if (c->p >= c->end) return SYNTAX;
                int rc;
                if (*c->p == '{') {
                    rc = parse_object(n->child, c, depth + 1, rest);
                } else if (*c->p == 'n') {
                    rc = skip_literal(c, "null", 4);
                    if (rc == OK && push_null(n->child) < 0) rc = NOMEM;
                } else {
                    rc = BAIL;
                }
                if (rc != OK) return rc;
                skip_ws(c);
                if (c->p >= c->end) return SYNTAX;
                if (*c->p == ',') {
                    c->p++;
                    skip_ws(c);
                    continue;
                }
                if (*c->p != ']') return SYNTAX;
                c->p++;
                break;
            }
        }
        if (n->child->length > INT32_MAX) return TOOBIG;
        if (push_bit(n, 1) < 0 || push_offset(n, (int32_t)n->child->length) < 0) return NOMEM;
        n->length++;
        return OK;
    }
    }
    return SYNTAX;
}

/* Keys are short: compared inline, 8 bytes at a time (a call to memcmp cost 5% here). */
static inline int same_key(const char *a, const char *b, Py_ssize_t len) {
    for (; len >= 8; a += 8, b += 8, len -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    for (; len; len--)
        if (*a++ != *b++) return 0;
    return 1;
}

static int find_field(Node *n, const char *key, Py_ssize_t len, int hint) {
    for (int k = 0; k < n->nfields; k++) {
        int i = hint + k < n->nfields ? hint + k : hint + k - n->nfields;
        if (n->keylens[i] == len && same_key(n->keys[i], key, len)) return i;
    }
    return -1;
}

#define MAX_UNKNOWN 16 /* members the schema does not know, per object; more: the fallback */

/* An object at ``depth`` into struct ``n``; its unknown members into ``rest``. */
static int parse_object(Node *n, Cur *c, int depth, Buf *rest) {
    uint64_t seen = 0;
    int hint = 0, rc, wrote = 0, nunknown = 0;
    const char *unknown[MAX_UNKNOWN];
    Py_ssize_t unknown_len[MAX_UNKNOWN];
    c->p++; /* '{' */
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
    } else {
        for (;;) {
            const char *key, *stop;
            int escaped;
            if (c->p >= c->end || *c->p != '"') return SYNTAX;
            if ((rc = scan_string(c, &key, &stop, &escaped)) != OK) return rc;
            if (escaped) return BAIL;
            Py_ssize_t keylen = stop - key;
            int i = find_field(n, key, keylen, hint);
            if (i >= 0 && (seen >> i) & 1) return BAIL; /* repeated */
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':') return SYNTAX;
            c->p++;
            skip_ws(c);
            if (i < 0) { /* unknown: kept as written, unless repeated (a dict keeps one) */
                if (!rest || nunknown == MAX_UNKNOWN) return BAIL;
                for (int u = 0; u < nunknown; u++)
                    if (unknown_len[u] == keylen && memcmp(unknown[u], key, (size_t)keylen) == 0)
                        return BAIL;
                unknown[nunknown] = key;
                unknown_len[nunknown++] = keylen;
                const char *value = c->p;
                if ((rc = skip_value(c, depth + 1)) != OK) return rc;
                if (append_key(rest, wrote, key, keylen) < 0 ||
                    append(rest, value, c->p - value) < 0)
                    return NOMEM;
                wrote = 1;
            } else {
                seen |= (uint64_t)1 << i;
                hint = i + 1;
                Node *f = n->fields[i];
                Py_ssize_t before = rest ? rest->len : 0, opened = before;
                const char *value = c->p;
                if (rest && f->kind == K_STRUCT) { /* its unknown members, nested */
                    if (append_key(rest, wrote, key, keylen) < 0 ||
                        append(rest, "{", 1) < 0)
                        return NOMEM;
                    opened = rest->len;
                }
                if ((rc = parse_value(f, c, depth + 1, rest)) != OK) return rc;
                if (rest && f->kind == K_STRUCT) {
                    if (rest->len == opened) {
                        rest->len = before;
                    } else {
                        if (append(rest, "}", 1) < 0) return NOMEM;
                        wrote = 1;
                    }
                } else if (rest && f->kind == K_LIST && rest->len > before) {
                    /* an element had unknown members: the whole array, as written */
                    rest->len = before;
                    if (append_key(rest, wrote, key, keylen) < 0 ||
                        append(rest, value, c->p - value) < 0)
                        return NOMEM;
                    wrote = 1;
                }
            }
            skip_ws(c);
            if (c->p >= c->end) return SYNTAX;
            if (*c->p == ',') {
                c->p++;
                skip_ws(c);
                continue;
            }
            if (*c->p != '}') return SYNTAX;
            c->p++;
            break;
        }
    }
    for (int i = 0; i < n->nfields; i++)
        if (!((seen >> i) & 1) && push_null(n->fields[i]) < 0) return NOMEM;
    if (push_bit(n, 1) < 0) return NOMEM;
    n->length++;
    return OK;
}

/* --- marks: undo a record or a document ------------------------------------------------ */

static void mark(Scanner *s, Mark *m) {
    for (int i = 0; i < s->nall; i++) {
        Node *n = s->all[i];
        m[i].length = n->length;
        m[i].nulls = n->nulls;
        m[i].data = n->data.len;
    }
}

static void undo(Scanner *s, Mark *m) {
    for (int i = 0; i < s->nall; i++) {
        Node *n = s->all[i];
        zero_past(n, m[i].length, n->validity.len, n->views.len);
        n->length = m[i].length;
        n->nulls = m[i].nulls;
        n->data.len = m[i].data;
        n->validity.len = (n->length + 7) >> 3;
        if (n->kind == K_TEXT || n->kind == K_RAW) n->views.len = n->length * 16;
        if (n->kind == K_LIST) n->offsets.len = (n->length + 1) * 4;
    }
}

/* --- the schema ------------------------------------------------------------------------ */

static void free_node(Node *n) {
    if (!n) return;
    for (int i = 0; i < n->nfields; i++) {
        free_node(n->fields[i]);
        free(n->keys[i]);
    }
    free(n->fields);
    free(n->keys);
    free(n->keylens);
    free_node(n->child);
    free(n->validity.p);
    free(n->views.p);
    free(n->data.p);
    free(n->offsets.p);
    free(n);
}

static Node *build_node(PyObject *spec, Scanner *s) {
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_SetString(PyExc_TypeError, "spec must be a tuple");
        return NULL;
    }
    const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    if (!kind) return NULL;
    Node *n = calloc(1, sizeof(Node));
    if (!n) {
        PyErr_NoMemory();
        return NULL;
    }
    Node **all = realloc(s->all, sizeof(Node *) * (size_t)(s->nall + 1));
    if (!all) {
        free(n);
        PyErr_NoMemory();
        return NULL;
    }
    s->all = all;
    s->all[s->nall++] = n;
    if (strcmp(kind, "text") == 0) {
        n->kind = K_TEXT;
    } else if (strcmp(kind, "raw") == 0) {
        n->kind = K_RAW;
    } else if (strcmp(kind, "list") == 0 && PyTuple_GET_SIZE(spec) == 2) {
        n->kind = K_LIST;
        n->child = build_node(PyTuple_GET_ITEM(spec, 1), s);
        if (!n->child) return NULL;
        if (push_offset(n, 0) < 0) {
            PyErr_NoMemory();
            return NULL;
        }
    } else if (strcmp(kind, "struct") == 0 && PyTuple_GET_SIZE(spec) == 2) {
        n->kind = K_STRUCT;
        PyObject *members = PyTuple_GET_ITEM(spec, 1);
        if (!PyTuple_Check(members) || PyTuple_GET_SIZE(members) > MAX_FIELDS) {
            PyErr_SetString(PyExc_ValueError, "struct members: a tuple of at most 64");
            return NULL;
        }
        Py_ssize_t count = PyTuple_GET_SIZE(members);
        n->fields = calloc((size_t)count + 1, sizeof(Node *));
        n->keys = calloc((size_t)count + 1, sizeof(char *));
        n->keylens = calloc((size_t)count + 1, sizeof(Py_ssize_t));
        if (!n->fields || !n->keys || !n->keylens) {
            PyErr_NoMemory();
            return NULL;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *member = PyTuple_GET_ITEM(members, i);
            Py_ssize_t len;
            const char *key;
            if (!PyTuple_Check(member) || PyTuple_GET_SIZE(member) != 2 ||
                !(key = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(member, 0), &len))) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "member: (key, spec)");
                return NULL;
            }
            n->keys[i] = malloc((size_t)len + 1);
            if (!n->keys[i]) {
                PyErr_NoMemory();
                return NULL;
            }
            memcpy(n->keys[i], key, (size_t)len + 1);
            n->keylens[i] = len;
            n->nfields = (int)i + 1;
            n->fields[i] = build_node(PyTuple_GET_ITEM(member, 1), s);
            if (!n->fields[i]) return NULL;
        }
    } else {
        PyErr_Format(PyExc_ValueError, "unknown spec kind %s", kind);
        return NULL;
    }
    return n;
}

static void Scanner_dealloc(Scanner *self) {
    free_node(self->root);
    free_node(self->unmapped);
    free(self->all);
    free(self->record_mark);
    free(self->document_mark);
    free(self->rest.p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Buf *node_buf(Node *n, int which) {
    return which == 0 ? &n->validity : which == 1 ? &n->views : which == 2 ? &n->data : &n->offsets;
}

/* Start the buffers at the capacities an earlier scanner of the same spec learned. */
static int set_capacities(Scanner *self, PyObject *capacities) {
    Py_buffer hints;
    if (PyObject_GetBuffer(capacities, &hints, PyBUF_SIMPLE) < 0) return -1;
    if (hints.len == (Py_ssize_t)sizeof(Py_ssize_t) * 4 * self->nall) {
        const Py_ssize_t *hint = hints.buf;
        for (int i = 0; i < self->nall; i++)
            for (int k = 0; k < 4; k++) {
                Py_ssize_t h = hint[i * 4 + k];
                node_buf(self->all[i], k)->hint = h < 0 ? 0 : h > MAX_HINT ? MAX_HINT : h;
            }
    }
    PyBuffer_Release(&hints);
    return 0;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    PyObject *spec, *capacities = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &spec, &capacities)) return -1;
    if (self->root) return 0;
    self->root = build_node(spec, self);
    if (!self->root) return -1;
    if (self->root->kind != K_STRUCT) {
        PyErr_SetString(PyExc_ValueError, "the root spec must be a struct");
        return -1;
    }
    PyObject *text = Py_BuildValue("(s)", "text");
    if (!text) return -1;
    self->unmapped = build_node(text, self);
    Py_DECREF(text);
    if (!self->unmapped) return -1;
    self->record_mark = calloc((size_t)self->nall, sizeof(Mark));
    self->document_mark = calloc((size_t)self->nall, sizeof(Mark));
    if (!self->record_mark || !self->document_mark) {
        PyErr_NoMemory();
        return -1;
    }
    return capacities == Py_None ? 0 : set_capacities(self, capacities);
}

/* --- add: one document ----------------------------------------------------------------- */

/* The fallback's re-encoded record, which must be plain for this scanner. */
static int add_fallback_row(Scanner *s, PyObject *result) {
    PyObject *encoded, *unmapped;
    if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2) {
        PyErr_SetString(PyExc_TypeError, "fallback returns (bytes, str | None) or None");
        return FAIL;
    }
    encoded = PyTuple_GET_ITEM(result, 0);
    unmapped = PyTuple_GET_ITEM(result, 1);
    if (!PyBytes_Check(encoded)) {
        PyErr_SetString(PyExc_TypeError, "fallback's record must be bytes");
        return FAIL;
    }
    Cur c = {PyBytes_AS_STRING(encoded), PyBytes_AS_STRING(encoded) + PyBytes_GET_SIZE(encoded)};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') return SYNTAX;
    int rc = parse_object(s->root, &c, 1, NULL);
    if (rc != OK) return rc == BAIL ? SYNTAX : rc;
    skip_ws(&c);
    if (c.p != c.end) return SYNTAX;
    if (unmapped == Py_None) return push_null(s->unmapped) < 0 ? NOMEM : OK;
    Py_ssize_t len;
    const char *text = PyUnicode_AsUTF8AndSize(unmapped, &len);
    if (!text) return FAIL;
    return push_bytes(s->unmapped, text, len);
}

/* With the GIL held: the fallback's row for a record the walk does not handle. */
static int call_fallback(Scanner *s, PyObject *fallback, const char *start, Py_ssize_t len,
                         Py_ssize_t position) {
    PyObject *span = PyBytes_FromStringAndSize(start, len);
    if (!span) return FAIL;
    PyObject *result = PyObject_CallFunction(fallback, "Nn", span, position);
    if (!result) return FAIL;
    int rc = result == Py_None ? OK : add_fallback_row(s, result);
    Py_DECREF(result);
    return rc;
}

/* The walk of a document, without the GIL (``s->thread`` is this thread's saved state). */
static int add_records(Scanner *s, Cur *c, PyObject *fallback, Py_ssize_t *count) {
    static const char records_key[] = "\"Records\"";
    skip_ws(c);
    if (c->p >= c->end || *c->p != '{') return SYNTAX;
    c->p++;
    skip_ws(c);
    if (skip_literal(c, records_key, 9) != OK) return SYNTAX;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') return SYNTAX;
    c->p++;
    skip_ws(c);
    if (c->p >= c->end || *c->p != '[') return SYNTAX;
    c->p++;
    skip_ws(c);
    Py_ssize_t position = 0;
    if (c->p < c->end && *c->p == ']') {
        c->p++;
    } else {
        for (;;) {
            if (c->p >= c->end) return SYNTAX;
            const char *start = c->p;
            int rc = BAIL;
            mark(s, s->record_mark);
            s->rest.len = 0;
            if (*c->p == '{') {
                if (append(&s->rest, "{", 1) < 0) return NOMEM;
                rc = parse_object(s->root, c, 1, &s->rest);
            }
            if (rc == OK) {
                if (s->rest.len == 1) {
                    if (push_null(s->unmapped) < 0) return NOMEM;
                } else {
                    if (append(&s->rest, "}", 1) < 0) return NOMEM;
                    if ((rc = push_bytes(s->unmapped, s->rest.p, s->rest.len)) != OK) return rc;
                }
            } else if (rc == BAIL) {
                undo(s, s->record_mark);
                c->p = start;
                if ((rc = skip_value(c, 1)) != OK) return rc;
                PyEval_RestoreThread(s->thread); /* the fallback is Python: take the GIL */
                rc = call_fallback(s, fallback, start, c->p - start, position);
                s->thread = PyEval_SaveThread();
                if (rc != OK) return rc;
            } else {
                return rc;
            }
            position++;
            skip_ws(c);
            if (c->p >= c->end) return SYNTAX;
            if (*c->p == ',') {
                c->p++;
                skip_ws(c);
                continue;
            }
            if (*c->p != ']') return SYNTAX;
            c->p++;
            break;
        }
    }
    skip_ws(c);
    if (c->p >= c->end || *c->p != '}') return SYNTAX;
    c->p++;
    skip_ws(c);
    if (c->p != c->end) return SYNTAX;
    *count = position;
    return OK;
}

/* One call at a time: the walk runs without the GIL, so a second thread (or the fallback)
 * calling in would find the buffers half written. */
static int enter(Scanner *self) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Scanner is in use (one thread at a time)");
        return 0;
    }
    self->busy = 1;
    return 1;
}

static PyObject *Scanner_add(Scanner *self, PyObject *args) {
    Py_buffer document;
    PyObject *fallback;
    PyObject *copy = NULL;
    if (!PyArg_ParseTuple(args, "y*O", &document, &fallback)) return NULL;
    if (!document.readonly) { /* another thread could change it under the walk: a copy */
        copy = PyBytes_FromStringAndSize(document.buf, document.len);
        PyBuffer_Release(&document);
        if (!copy || PyObject_GetBuffer(copy, &document, PyBUF_SIMPLE) < 0) {
            Py_XDECREF(copy);
            return NULL;
        }
    }
    if (!enter(self)) {
        PyBuffer_Release(&document);
        Py_XDECREF(copy);
        return NULL;
    }
    /* The buffer stays exported (and the object alive) until released: read without the GIL. */
    Cur c = {document.buf, (const char *)document.buf + document.len};
    Py_ssize_t count = 0;
    mark(self, self->document_mark);
    self->thread = PyEval_SaveThread();
    int rc = add_records(self, &c, fallback, &count);
    PyEval_RestoreThread(self->thread);
    self->thread = NULL;
    self->busy = 0;
    PyBuffer_Release(&document);
    Py_XDECREF(copy);
    if (rc == OK) return PyLong_FromSsize_t(count);
    undo(self, self->document_mark);
    if (rc == NOMEM) return PyErr_NoMemory();
    if (rc == FAIL) return NULL;
    /* SYNTAX, or TOOBIG (a column would outgrow the chunk): the caller's decoder takes it */
    Py_RETURN_NONE;
}

/* --- finish: the buffers, as Python bytes ----------------------------------------------- */

/* A finished buffer handed to Python (and Arrow) as is: no copy; freed with its owner. */
typedef struct {
    PyObject_HEAD
    char *p;
    Py_ssize_t len;
} Block;

static int Block_getbuffer(Block *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->p, self->len, 1, flags);
}

static void Block_dealloc(Block *self) {
    free(self->p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyBufferProcs Block_as_buffer = {(getbufferproc)Block_getbuffer, NULL};

static PyTypeObject BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "transforms._speedups.Block",
    .tp_basicsize = sizeof(Block),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bytes of one column buffer.",
    .tp_dealloc = (destructor)Block_dealloc,
    .tp_as_buffer = &Block_as_buffer,
};

static PyObject *take(Buf *b, Py_ssize_t len) {
    if (!b->p && reserve(b, 1) < 0) {
        PyErr_NoMemory();
        return NULL;
    }
    Block *block = PyObject_New(Block, &BlockType);
    if (!block) return NULL;
    block->p = b->p;
    block->len = len;
    /* The next chunk's buffer starts about this size: growing from 1 KiB by doubling cost
     * ~8% of a run in realloc copies and page faults. */
    b->hint = len + len / 8 < MAX_HINT ? len + len / 8 : MAX_HINT;
    b->p = NULL;
    b->len = b->cap = 0;
    return (PyObject *)block;
}

static PyObject *node_out(Node *n) {
    PyObject *validity;
    if (n->nulls) {
        validity = take(&n->validity, (n->length + 7) >> 3);
    } else {
        validity = Py_None;
        Py_INCREF(validity);
    }
    if (!validity) return NULL;
    PyObject *out = NULL;
    switch (n->kind) {
    case K_TEXT:
    case K_RAW: {
        PyObject *views = take(&n->views, n->length * 16), *data = take(&n->data, n->data.len);
        if (views && data) out = Py_BuildValue("nnOOO", n->length, n->nulls, validity, views, data);
        Py_XDECREF(views);
        Py_XDECREF(data);
        break;
    }
    case K_STRUCT: {
        PyObject *children = PyList_New(n->nfields);
        if (!children) break;
        for (int i = 0; i < n->nfields; i++) {
            PyObject *child = node_out(n->fields[i]);
            if (!child) {
                Py_DECREF(children);
                children = NULL;
                break;
            }
            PyList_SET_ITEM(children, i, child);
        }
        if (children) out = Py_BuildValue("nnON", n->length, n->nulls, validity, children);
        break;
    }
    case K_LIST: {
        PyObject *offsets = take(&n->offsets, (n->length + 1) * 4);
        PyObject *child = node_out(n->child);
        if (offsets && child) out = Py_BuildValue("nnOOO", n->length, n->nulls, validity, offsets, child);
        Py_XDECREF(offsets);
        Py_XDECREF(child);
        break;
    }
    }
    Py_DECREF(validity);
    return out;
}

static int reset(Scanner *s) {
    for (int i = 0; i < s->nall; i++) {
        Node *n = s->all[i];
        zero_past(n, 0, n->validity.len, n->views.len); /* buffers not taken are reused */
        n->length = n->nulls = 0;
        n->validity.len = n->views.len = n->data.len = n->offsets.len = 0;
        if (n->kind == K_LIST && push_offset(n, 0) < 0) return -1;
    }
    return 0;
}

static PyObject *Scanner_finish(Scanner *self, PyObject *unused) {
    if (!enter(self)) return NULL;
    self->busy = 0; /* finish holds the GIL throughout: only a walk in progress is in the way */
    PyObject *columns = node_out(self->root);
    PyObject *unmapped = columns ? node_out(self->unmapped) : NULL;
    if (reset(self) < 0) {
        PyErr_NoMemory();
        Py_XDECREF(columns);
        Py_XDECREF(unmapped);
        return NULL;
    }
    if (!unmapped) {
        Py_XDECREF(columns);
        return NULL;
    }
    return Py_BuildValue("NN", columns, unmapped);
}

static PyObject *Scanner_rows(Scanner *self, void *closure) {
    return PyLong_FromSsize_t(self->root->length);
}

static PyObject *Scanner_data_bytes(Scanner *self, void *closure) {
    Py_ssize_t most = 0;
    for (int i = 0; i < self->nall; i++)
        if (self->all[i]->data.len > most) most = self->all[i]->data.len;
    return PyLong_FromSsize_t(most);
}

static PyMethodDef Scanner_methods[] = {
    {"add", (PyCFunction)Scanner_add, METH_VARARGS,
     "add(document, fallback) -> records read, or None (document undone: not for this scanner)"},
    {"finish", (PyCFunction)Scanner_finish, METH_NOARGS,
     "finish() -> (root struct buffers, unmapped buffers); empties the scanner"},
    {NULL, NULL, 0, NULL},
};

static PyObject *Scanner_capacities(Scanner *self, void *closure) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(Py_ssize_t) * 4 * self->nall);
    if (!out) return NULL;
    Py_ssize_t *hint = (Py_ssize_t *)PyBytes_AS_STRING(out);
    for (int i = 0; i < self->nall; i++)
        for (int k = 0; k < 4; k++) {
            Buf *b = node_buf(self->all[i], k);
            hint[i * 4 + k] = b->hint > b->cap ? b->hint : b->cap;
        }
    return out;
}

static PyGetSetDef Scanner_getset[] = {
    {"capacities", (getter)Scanner_capacities, NULL,
     "the buffers' capacities to start a later Scanner(spec, capacities) from", NULL},
    {"rows", (getter)Scanner_rows, NULL, "rows held", NULL},
    {"data_bytes", (getter)Scanner_data_bytes, NULL, "largest column's string bytes", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "transforms._speedups.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scans CloudTrail documents into Arrow-layout column buffers.\n\n"
              "add() walks a document without holding the GIL (taking it back only for the\n"
              "fallback), so scanners in different threads run at once. One Scanner is used\n"
              "by one thread at a time: a call while another is in progress raises\n"
              "RuntimeError.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
    .tp_getset = Scanner_getset,
};

/* --- is_utf8: what ``str(data, "utf-8")`` accepts (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), without making the str ------------------------- */

static int utf8_valid(const unsigned char *p, const unsigned char *end) {
    while (p < end) {
#if defined(__SSE2__)
        while (end - p >= 16 && !_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)p))) p += 16;
#endif
        if (p >= end) break;
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c < 0xC2) return 0; /* a continuation byte, or an overlong 2-byte form */
        if (c < 0xE0) {
            if (end - p < 2 || (p[1] & 0xC0) != 0x80) return 0;
            p += 2;
            continue;
        }
        if (c < 0xF0) {
            if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
            if (c == 0xED && p[1] >= 0xA0) return 0; /* a surrogate */
            p += 3;
            continue;
        }
        if (c < 0xF5) {
            if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
                (p[3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
            if (c == 0xF4 && p[1] >= 0x90) return 0; /* past U+10FFFF */
            p += 4;
            continue;
        }
        return 0;
    }
    return 1;
}

#define UTF8_UNLOCKED_FROM ((Py_ssize_t)64 << 10) /* bytes: a document, not a record */

static PyObject *is_utf8(PyObject *module, PyObject *arg) {
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = data.buf;
    int valid;
    if (data.len < UTF8_UNLOCKED_FROM) { /* a record's span: handing the GIL over costs more */
        valid = utf8_valid(p, p + data.len);
    } else {
        Py_BEGIN_ALLOW_THREADS
        valid = utf8_valid(p, p + data.len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&data);
    return PyBool_FromLong(valid);
}

static PyMethodDef module_methods[] = {
    {"is_utf8", (PyCFunction)is_utf8, METH_O,
     "is_utf8(data) -> whether str(data, 'utf-8') would succeed (from 64 KiB, without the GIL)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "Native scanning of CloudTrail documents.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&BlockType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
