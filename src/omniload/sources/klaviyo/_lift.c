/* _lift: properties=columns' batch reader in C (lift.py's _Native; lift.py's docstring says what a lift is).

One call reads a batch's JSON column (an Arrow string array's buffers) against the properties that have their column
(or none: they stay in the JSON column) and builds each lifted property's Arrow buffers (validity, values or offsets
and text), with no Python object per row or value and the GIL released. A row it does not read exactly as lift.py's
Python readers would is left (NULL in every column, and named) for the caller to read in Python: a property not
given, a value whose JSON type is not its column's, an integer a column cannot hold exactly, a key twice, a row that
is not an object. The properties not given are returned in the order they first appear with the JSON kinds of their
values, so that the caller can give them their columns and read the batch again. JSON columns get each value's text
as the API sent it when that text is what msgspec would write again (compact, numbers and escapes as msgspec writes
them, no key twice); the rows where it may not be are returned, and the caller writes those values again in Python.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { M_STAY = 0, M_INT = 1, M_FLOAT = 2, M_BOOL = 3, M_TEXT = 4, M_JSON = 5 };
enum { H_NONE = 0, H_TEXT = 1, H_FLOAT = 2 };

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t more) {
    if (b->len + more <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

typedef struct {
    const char *name;
    Py_ssize_t name_len;
    int mode, held;
    uint64_t hash;
    Py_ssize_t seen;  /* the last row holding it: a key twice in a row refuses */
    uint8_t *valid;   /* lifted: validity bitmap */
    char *fixed;      /* INT/FLOAT: 8 bytes a row; BOOL: a bitmap */
    int32_t *offsets; /* TEXT/JSON */
    Buf text;
    uint8_t *fixes; /* JSON: a byte a row, 1 where msgspec may write the text otherwise (made at the first) */
    Py_ssize_t nfixes, rows;
} Prop;

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return h;
}

#define WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')

static const char *skip_ws(const char *p, const char *e) {
    while (p < e && WS(*p)) p++;
    return p;
}

/* The end of the string starting at p (its opening quote); *esc: it holds a backslash; *odd: an escape msgspec does
   not write as it is (anything but \" \\ \b \f \n \r \t). NULL: not a string. */
static const char *skip_string(const char *p, const char *e, int *esc, int *odd) {
    p++;
    while (p < e) {
        char c = *p;
        if (c == '"') return p + 1;
        if (c == '\\') {
            if (p + 1 >= e) return NULL;
            *esc = 1;
            char n = p[1];
            if (!(n == '"' || n == '\\' || n == 'b' || n == 'f' || n == 'n' || n == 'r' || n == 't')) *odd = 1;
            p += 2;
            continue;
        }
        if ((unsigned char)c < 0x20) return NULL;
        p++;
    }
    return NULL;
}

/* The end of the number starting at p; kind: 0 an integer, 1 a fraction or exponent; *odd: msgspec would write it
   otherwise (a fraction with more than 15 digits, a trailing zero, an exponent, below 0.0001, "-0"). */
static const char *skip_number(const char *p, const char *e, int *kind, int *odd) {
    const char *s = p;
    if (p < e && *p == '-') p++;
    const char *ds = p;
    while (p < e && *p >= '0' && *p <= '9') p++;
    const char *de = p;
    if (de == ds) return NULL;
    *kind = 0;
    if (p < e && *p == '.') {
        *kind = 1;
        p++;
        const char *fs = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        const char *fe = p;
        if (fe == fs) return NULL;
        if (p < e && (*p == 'e' || *p == 'E')) {
            *odd = 1;
        } else {
            /* significant digits: the integer part's (none when it is 0) and the fraction's (its leading zeros not,
               when the integer part is 0) */
            Py_ssize_t sig, lead = 0;
            if (de - ds == 1 && *ds == '0') {
                while (fs + lead < fe && fs[lead] == '0') lead++;
                sig = (fe - fs) - lead;
                if (lead > 3 && lead < fe - fs) *odd = 1; /* below 0.0001: msgspec may write an exponent */
            } else {
                sig = (de - ds) + (fe - fs);
            }
            if (sig > 15) *odd = 1;
            if (fe - fs > 1 && fe[-1] == '0') *odd = 1;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *kind = 1;
        *odd = 1;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        const char *xs = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == xs) return NULL;
    }
    if (*kind == 0 && p - s == 2 && s[0] == '-' && s[1] == '0') *odd = 1;
    return p;
}

/* What skip_value keeps while it reads a value: the containers open (and for each where its keys start) and the
   keys of the objects open, to find a key twice in one object (msgspec keeps its last value only). */
typedef struct {
    char *open;
    Py_ssize_t *first, depth, cap;
    const char **keys;
    size_t *lens;
    Py_ssize_t nkeys, capkeys;
} Scan;

static int scan_push(Scan *sc, char c) {
    if (sc->depth == sc->cap) {
        Py_ssize_t cap = sc->cap ? sc->cap * 2 : 64;
        char *o = realloc(sc->open, (size_t)cap);
        if (!o) return 0;
        sc->open = o;
        Py_ssize_t *f = realloc(sc->first, (size_t)cap * sizeof *f);
        if (!f) return 0;
        sc->first = f;
        sc->cap = cap;
    }
    sc->open[sc->depth] = c;
    sc->first[sc->depth++] = sc->nkeys;
    return 1;
}

/* A key of the innermost object: 1 when that object has it already. -1: out of memory. */
static int scan_key(Scan *sc, const char *k, size_t n) {
    for (Py_ssize_t i = sc->first[sc->depth - 1]; i < sc->nkeys; i++)
        if (sc->lens[i] == n && memcmp(sc->keys[i], k, n) == 0) return 1;
    if (sc->nkeys == sc->capkeys) {
        Py_ssize_t cap = sc->capkeys ? sc->capkeys * 2 : 256;
        const char **ks = realloc(sc->keys, (size_t)cap * sizeof *ks);
        if (!ks) return -1;
        sc->keys = ks;
        size_t *ls = realloc(sc->lens, (size_t)cap * sizeof *ls);
        if (!ls) return -1;
        sc->lens = ls;
        sc->capkeys = cap;
    }
    sc->keys[sc->nkeys] = k;
    sc->lens[sc->nkeys++] = n;
    return 0;
}

#define WS_ODD(p)                       \
    do {                                \
        const char *q_ = skip_ws(p, e); \
        if (q_ != p) *odd = 1;          \
        p = q_;                         \
    } while (0)

/* The end of any JSON value at p (nested ones without recursion); *odd: msgspec would write its text otherwise
   (white space between tokens, an escape or number it writes otherwise, a key twice in an object). NULL: not JSON
   (or out of memory: *oom). */
static const char *skip_value(Scan *sc, const char *p, const char *e, int *odd, int *oom) {
    int esc = 0, kind;
    sc->depth = sc->nkeys = 0;
    for (;;) {
        if (p >= e) return NULL;
        char c = *p;
        if (c == '{' || c == '[') {
            if (!scan_push(sc, c)) return *oom = 1, NULL;
            p++;
            WS_ODD(p);
            if (p < e && *p == (c == '{' ? '}' : ']')) {
                sc->depth--;
                p++;
            } else if (c == '[') {
                continue;
            } else {
                goto key;
            }
        } else {
            if (c == '"') p = skip_string(p, e, &esc, odd);
            else if (c == '-' || (c >= '0' && c <= '9')) p = skip_number(p, e, &kind, odd);
            else if (c == 't' && e - p >= 4 && memcmp(p, "true", 4) == 0) p += 4;
            else if (c == 'f' && e - p >= 5 && memcmp(p, "false", 5) == 0) p += 5;
            else if (c == 'n' && e - p >= 4 && memcmp(p, "null", 4) == 0) p += 4;
            else return NULL;
            if (!p) return NULL;
        }
        /* after a value: close containers, or a comma and the next value (in an object: its key first) */
        for (;;) {
            if (sc->depth == 0) return p;
            WS_ODD(p);
            if (p >= e) return NULL;
            char open = sc->open[sc->depth - 1];
            if (*p == (open == '{' ? '}' : ']')) {
                sc->nkeys = sc->first[--sc->depth];
                p++;
                continue;
            }
            if (*p != ',') return NULL;
            p++;
            WS_ODD(p);
            if (open == '{') goto key;
            break;
        }
        continue;
    key:
        if (p >= e || *p != '"') return NULL;
        {
            const char *ks = p;
            p = skip_string(p, e, &esc, odd);
            if (!p) return NULL;
            int twice = scan_key(sc, ks, (size_t)(p - ks));
            if (twice < 0) return *oom = 1, NULL;
            if (twice) *odd = 1;
        }
        WS_ODD(p);
        if (p >= e || *p != ':') return NULL;
        p++;
        WS_ODD(p);
    }
}

static int put_utf8(Buf *b, uint32_t cp) {
    if (!buf_reserve(b, 4)) return 0;
    char *o = b->p + b->len;
    if (cp < 0x80) {
        o[0] = (char)cp;
        b->len += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        b->len += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        b->len += 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        b->len += 4;
    }
    return 1;
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* The string s..e (its quotes included) unescaped into b; 0: an escape it cannot read (a lone surrogate). */
static int unescape(Buf *b, const char *s, const char *e) {
    s++;
    e--;
    if (!buf_reserve(b, (size_t)(e - s))) return 0;
    while (s < e) {
        const char *bs = memchr(s, '\\', (size_t)(e - s));
        if (!bs) {
            memcpy(b->p + b->len, s, (size_t)(e - s));
            b->len += (size_t)(e - s);
            return 1;
        }
        memcpy(b->p + b->len, s, (size_t)(bs - s));
        b->len += (size_t)(bs - s);
        char c = bs[1];
        s = bs + 2;
        char out;
        switch (c) {
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case '/': out = '/'; break;
            case 'b': out = '\b'; break;
            case 'f': out = '\f'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 't': out = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (e - s < 4 || !hex4(s, &cp)) return 0;
                s += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (e - s < 6 || s[0] != '\\' || s[1] != 'u' || !hex4(s + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return 0;
                    s += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (!put_utf8(b, cp)) return 0;
                if (!buf_reserve(b, (size_t)(e - s))) return 0;
                continue;
            }
            default: return 0;
        }
        b->p[b->len++] = out;
    }
    return 1;
}

static locale_t c_locale;

/* A number's text as an int64 (0: not an integer or out of range). */
static int read_int(const char *s, const char *e, int64_t *out) {
    int neg = 0;
    if (s < e && *s == '-') {
        neg = 1;
        s++;
    }
    if (s == e || e - s > 19) return 0;
    uint64_t v = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9') return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return 0;
        *out = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)v;
    }
    return 1;
}

static int read_double(const char *s, const char *e, double *out) {
    char tmp[64];
    size_t n = (size_t)(e - s);
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    double v = strtod_l(tmp, &end, c_locale);
    if (end != tmp + n || errno == ERANGE) return 0;
    *out = v;
    return 1;
}

/* Whether a property left without a column stays in the JSON column: not when it is a well-known one whose value its
   column holds as it is (text; a number a double holds exactly), as lift.py's _HELD says. */
static int stays(int held, const char *v, const char *e) {
    if (held == H_TEXT) return *v != '"';
    if (held == H_FLOAT) {
        const char *p = v;
        if (p < e && *p == '-') p++;
        const char *d = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == d) return 1;
        if (p == e) return (p - d) > 15;
        return !(*p == '.' || *p == 'e' || *p == 'E');
    }
    return 1;
}

#define SETBIT(bm, i) ((bm)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))

/* One value into its property's column; 0: it does not fit (its row is left to the caller), -1: out of memory. */
static int put(Prop *pr, Py_ssize_t row, const char *v, const char *ve, int odd, int kind) {
    char c = *v;
    switch (pr->mode) {
        case M_INT: {
            int64_t x;
            if (kind != 0 || !read_int(v, ve, &x)) return 0;
            ((int64_t *)pr->fixed)[row] = x;
            break;
        }
        case M_FLOAT: {
            double x;
            if (kind == 0) { /* an integer only where a double holds it exactly, as Arrow has it */
                int64_t i;
                if (!read_int(v, ve, &i) || i > (INT64_C(1) << 53) || i < -(INT64_C(1) << 53)) return 0;
                x = (double)i;
            } else if (!read_double(v, ve, &x)) {
                return 0;
            }
            ((double *)pr->fixed)[row] = x;
            break;
        }
        case M_BOOL:
            if (c == 't') SETBIT((uint8_t *)pr->fixed, row);
            else if (c != 'f') return 0;
            break;
        case M_TEXT:
            if (c != '"' || !unescape(&pr->text, v, ve)) return 0;
            pr->offsets[row + 1] = (int32_t)pr->text.len;
            break;
        case M_JSON:
            if (!buf_reserve(&pr->text, (size_t)(ve - v))) return -1;
            memcpy(pr->text.p + pr->text.len, v, (size_t)(ve - v));
            pr->text.len += (size_t)(ve - v);
            pr->offsets[row + 1] = (int32_t)pr->text.len;
            if (odd) {
                if (!pr->fixes && !(pr->fixes = calloc((size_t)pr->rows, 1))) return -1;
                pr->fixes[row] = 1;
                pr->nfixes++;
            }
            break;
    }
    SETBIT(pr->valid, row);
    return 1;
}

typedef struct {
    Prop *props;
    Py_ssize_t nprops, *table, mask;
} Props;

static Prop *find(Props *ps, const char *k, size_t n) {
    uint64_t h = hash_bytes(k, n);
    for (Py_ssize_t i = (Py_ssize_t)(h & (uint64_t)ps->mask);; i = (i + 1) & ps->mask) {
        Py_ssize_t j = ps->table[i];
        if (j < 0) return NULL;
        Prop *p = &ps->props[j];
        if (p->hash == h && (size_t)p->name_len == n && memcmp(p->name, k, n) == 0) return p;
    }
}

/* The properties a batch has that were not given (new ones), in the order they first appear, each with the JSON
   kinds of its values (K_* bits): what the caller needs to give them their columns, then read the batch again. */
enum { K_TEXT = 1, K_BOOL = 2, K_INT = 4, K_FLOAT = 8, K_NESTED = 16, K_WIDE = 32, K_NULL = 64 };

typedef struct {
    char *name;
    size_t len;
    uint64_t hash;
    int kinds;
} Unknown;

typedef struct {
    Unknown *items;
    Py_ssize_t n, cap;
} Unknowns;

/* Notes a value of an unknown key; 0: out of memory. */
static int note_unknown(Unknowns *u, const char *k, size_t n, const char *v, const char *ve, int kind) {
    uint64_t h = hash_bytes(k, n);
    Unknown *it = NULL;
    for (Py_ssize_t j = 0; j < u->n; j++)
        if (u->items[j].hash == h && u->items[j].len == n && memcmp(u->items[j].name, k, n) == 0) {
            it = &u->items[j];
            break;
        }
    if (!it) {
        if (u->n == u->cap) {
            Py_ssize_t cap = u->cap ? u->cap * 2 : 32;
            Unknown *items = realloc(u->items, (size_t)cap * sizeof *items);
            if (!items) return 0;
            u->items = items;
            u->cap = cap;
        }
        it = &u->items[u->n];
        it->name = malloc(n ? n : 1);
        if (!it->name) return 0;
        memcpy(it->name, k, n);
        it->len = n;
        it->hash = h;
        it->kinds = 0;
        u->n++;
    }
    char c = *v;
    int64_t x;
    if (c == '"') it->kinds |= K_TEXT;
    else if (c == 't' || c == 'f') it->kinds |= K_BOOL;
    else if (c == 'n') it->kinds |= K_NULL;
    else if (c == '{' || c == '[') it->kinds |= K_NESTED;
    else if (kind == 1) it->kinds |= K_FLOAT;
    else it->kinds |= read_int(v, ve, &x) ? K_INT : K_WIDE;
    return 1;
}

/* Reads row i (its text p..e) into the columns: 1 read, 0 not (the caller undoes what it put), -1 out of memory. */
static int read_row(Props *ps, Py_ssize_t i, const char *p, const char *e, uint8_t *stay, size_t limit, Buf *key,
                    Scan *sc, Unknowns *u) {
    /* a key not given, a key twice, a value its column cannot hold: the row is not read (the caller undoes what was
       put), but read to its end, so that each key not given is noted (with its value's kind) */
    int left = 0;
    p = skip_ws(p, e);
    if (p >= e) return 0;
    if (e - p == 4 && memcmp(p, "null", 4) == 0) return 1;
    if (*p != '{') return 0;
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}') return skip_ws(p + 1, e) == e;
    for (;;) {
        if (p >= e || *p != '"') return 0;
        const char *ks = p + 1;
        int esc = 0, odd = 0, kind = 0, oom = 0;
        p = skip_string(p, e, &esc, &odd);
        if (!p) return 0;
        Prop *pr;
        const char *k = ks;
        size_t klen = (size_t)(p - 1 - ks);
        if (esc) { /* an escaped key: looked up as its text */
            key->len = 0;
            if (!unescape(key, ks - 1, p)) return 0;
            k = key->p;
            klen = key->len;
        }
        pr = find(ps, k, klen);
        if (pr && pr->seen == i) left = 1; /* a key twice */
        if (pr) pr->seen = i;
        p = skip_ws(p, e);
        if (p >= e || *p != ':') return 0;
        p = skip_ws(p + 1, e);
        const char *v = p;
        odd = 0;
        if (p < e && (*p == '-' || (*p >= '0' && *p <= '9'))) p = skip_number(p, e, &kind, &odd);
        else p = skip_value(sc, p, e, &odd, &oom);
        if (oom) return -1;
        if (!p) return 0;
        if (!pr) { /* a property without its column */
            if (!note_unknown(u, k, klen, v, p, kind)) return -1;
            left = 1;
        } else if (!left && !(p - v == 4 && memcmp(v, "null", 4) == 0)) { /* null: as absent */
            if (pr->mode == M_STAY) {
                if (stays(pr->held, v, p)) stay[i] = 1;
            } else {
                int put_ = put(pr, i, v, p, odd, kind);
                if (put_ < 0) return put_;
                if (put_ == 0 || pr->text.len > limit) left = 1;
            }
        }
        p = skip_ws(p, e);
        if (p < e && *p == ',') {
            p = skip_ws(p + 1, e);
            continue;
        }
        if (p < e && *p == '}') return skip_ws(p + 1, e) == e && !left;
        return 0;
    }
}

#define CLRBIT(bm, i) ((bm)[(i) >> 3] &= (uint8_t)~(1u << ((i) & 7)))

/* Reads rows [0, n); a row it cannot read is marked in bad (and holds nothing in any column): the number of such
   rows, or -1 out of memory. */
static Py_ssize_t read_rows(Props *ps, const uint8_t *validity, Py_ssize_t voff, const char *offsets, int wide,
                            const char *data, Py_ssize_t n, uint8_t *stay, uint8_t *bad, size_t limit, Buf *key,
                            Scan *sc, Unknowns *u) {
    Py_ssize_t nbad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t r = voff + i;
        int64_t a = wide ? ((const int64_t *)offsets)[r] : ((const int32_t *)offsets)[r];
        int64_t b = wide ? ((const int64_t *)offsets)[r + 1] : ((const int32_t *)offsets)[r + 1];
        for (Py_ssize_t j = 0; j < ps->nprops; j++) { /* the row's text starts empty in every text column */
            Prop *pr = &ps->props[j];
            if (pr->offsets) pr->offsets[i + 1] = (int32_t)pr->text.len;
        }
        if (validity && !((validity[r >> 3] >> (r & 7)) & 1)) continue;
        int got = read_row(ps, i, data + a, data + b, stay, limit, key, sc, u);
        if (got < 0) return -1;
        if (got == 0) { /* undone: the row is read by the caller */
            bad[i] = 1;
            stay[i] = 0;
            nbad++;
            for (Py_ssize_t j = 0; j < ps->nprops; j++) {
                Prop *pr = &ps->props[j];
                if (pr->mode == M_STAY) continue;
                CLRBIT(pr->valid, i);
                if (pr->mode == M_BOOL) CLRBIT((uint8_t *)pr->fixed, i);
                if (pr->offsets) {
                    pr->text.len = (size_t)pr->offsets[i];
                    pr->offsets[i + 1] = pr->offsets[i];
                }
                if (pr->fixes && pr->fixes[i]) {
                    pr->fixes[i] = 0;
                    pr->nfixes--;
                }
            }
        }
    }
    return nbad;
}

static PyObject *bytes_of(const void *p, size_t n) { return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n); }

static void free_props(Props *ps) {
    for (Py_ssize_t j = 0; ps->props && j < ps->nprops; j++) {
        Prop *pr = &ps->props[j];
        free(pr->valid);
        free(pr->fixed);
        free(pr->offsets);
        free(pr->text.p);
        free(pr->fixes);
    }
    free(ps->props);
    free(ps->table);
}

/* lift(validity, offsets, data, offset, length, wide, names, modes, helds) -> (columns, stay, left, found):
   columns[j] for each property whose mode is not 0 (else None): (buffers, nulls, fixes), the buffers Arrow's array
   of its type has ((validity, values) for int/float/bool, (validity, offsets, text) for text/JSON), fixes a byte a
   row, 1 where msgspec may write the JSON text otherwise (None: no row, or not JSON); stay: one byte a row (1: the
   row keeps a property in the JSON column), or None when no row does; left: one byte a row (1: not read, NULL in
   every column), or None when every row was read; found: the properties not given, [(name, K_* bits of their
   values)]. */
static PyObject *lift(PyObject *self, PyObject *args) {
    PyObject *validity_obj, *names;
    Py_buffer offsets, data, modes, helds, validity = {0};
    Py_ssize_t voff, n;
    int wide;
    if (!PyArg_ParseTuple(args, "Oy*y*nnpO!y*y*", &validity_obj, &offsets, &data, &voff, &n, &wide, &PyList_Type,
                          &names, &modes, &helds))
        return NULL;
    PyObject *result = NULL;
    Props ps = {0};
    uint8_t *stay = NULL;
    if (validity_obj != Py_None && PyObject_GetBuffer(validity_obj, &validity, PyBUF_SIMPLE) < 0) goto done;
    ps.nprops = PyList_GET_SIZE(names);
    if (modes.len != ps.nprops || helds.len != ps.nprops) {
        PyErr_SetString(PyExc_ValueError, "names, modes and helds differ in length");
        goto done;
    }
    Py_ssize_t width = wide ? 8 : 4;
    if (n < 0 || voff < 0 || offsets.len < (voff + n + 1) * width ||
        (validity.buf && validity.len * 8 < voff + n)) {
        PyErr_SetString(PyExc_ValueError, "buffers shorter than the array");
        goto done;
    }
    if (n > 0) { /* every offset inside the text */
        int64_t lo = wide ? ((int64_t *)offsets.buf)[voff] : ((int32_t *)offsets.buf)[voff];
        int64_t hi = wide ? ((int64_t *)offsets.buf)[voff + n] : ((int32_t *)offsets.buf)[voff + n];
        if (lo < 0 || hi > data.len || lo > hi) {
            PyErr_SetString(PyExc_ValueError, "offsets outside the text");
            goto done;
        }
    }
    ps.props = calloc((size_t)(ps.nprops ? ps.nprops : 1), sizeof(Prop));
    Py_ssize_t size = 8;
    while (size < ps.nprops * 4) size *= 2;
    ps.mask = size - 1;
    ps.table = malloc((size_t)size * sizeof(Py_ssize_t));
    stay = calloc((size_t)(n ? n : 1), 1);
    if (!ps.props || !ps.table || !stay) goto nomem;
    for (Py_ssize_t i = 0; i < size; i++) ps.table[i] = -1;
    Py_ssize_t bitmap = (n + 7) / 8;
    for (Py_ssize_t j = 0; j < ps.nprops; j++) {
        Prop *pr = &ps.props[j];
        PyObject *name = PyList_GET_ITEM(names, j);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "names must be bytes");
            goto done;
        }
        pr->name = PyBytes_AS_STRING(name);
        pr->name_len = PyBytes_GET_SIZE(name);
        pr->hash = hash_bytes(pr->name, (size_t)pr->name_len);
        pr->mode = ((uint8_t *)modes.buf)[j];
        pr->held = ((uint8_t *)helds.buf)[j];
        pr->seen = -1;
        pr->rows = n ? n : 1;
        if (pr->mode > M_JSON) {
            PyErr_SetString(PyExc_ValueError, "unknown mode");
            goto done;
        }
        if (pr->mode != M_STAY) {
            pr->valid = calloc((size_t)(bitmap ? bitmap : 1), 1);
            if (!pr->valid) goto nomem;
            if (pr->mode == M_INT || pr->mode == M_FLOAT) pr->fixed = calloc((size_t)(n ? n : 1), 8);
            else if (pr->mode == M_BOOL) pr->fixed = calloc((size_t)(bitmap ? bitmap : 1), 1);
            else pr->offsets = calloc((size_t)n + 1, sizeof(int32_t));
            if (!pr->fixed && !pr->offsets) goto nomem;
        }
        Py_ssize_t i = (Py_ssize_t)(pr->hash & (uint64_t)ps.mask);
        while (ps.table[i] >= 0) {
            Prop *o = &ps.props[ps.table[i]];
            if (o->name_len == pr->name_len && memcmp(o->name, pr->name, (size_t)pr->name_len) == 0) {
                PyErr_SetString(PyExc_ValueError, "a name given twice");
                goto done;
            }
            i = (i + 1) & ps.mask;
        }
        ps.table[i] = j;
    }
    Buf key = {0};
    Scan sc = {0};
    Unknowns unknowns = {0};
    uint8_t *bad = calloc((size_t)(n ? n : 1), 1);
    if (!bad) goto nomem;
    Py_ssize_t nbad;
    Py_BEGIN_ALLOW_THREADS;
    nbad = read_rows(&ps, validity.buf, voff, offsets.buf, wide, data.buf, n, stay, bad, (size_t)INT32_MAX, &key, &sc,
                     &unknowns);
    Py_END_ALLOW_THREADS;
    free(key.p);
    free(sc.open);
    free(sc.first);
    free(sc.keys);
    free(sc.lens);
    if (nbad < 0) {
        for (Py_ssize_t j = 0; j < unknowns.n; j++) free(unknowns.items[j].name);
        free(unknowns.items);
        free(bad);
        goto nomem;
    }
    PyObject *found = PyList_New(unknowns.n);
    for (Py_ssize_t j = 0; found && j < unknowns.n; j++) {
        PyObject *it = Py_BuildValue("(y#i)", unknowns.items[j].name, (Py_ssize_t)unknowns.items[j].len,
                                     unknowns.items[j].kinds);
        if (!it) Py_CLEAR(found);
        else PyList_SET_ITEM(found, j, it);
    }
    for (Py_ssize_t j = 0; j < unknowns.n; j++) free(unknowns.items[j].name);
    free(unknowns.items);
    if (!found) {
        free(bad);
        goto done;
    }
    int any_stay = memchr(stay, 1, (size_t)n) != NULL;
    PyObject *columns = PyList_New(ps.nprops);
    if (!columns) {
        Py_DECREF(found);
        free(bad);
        goto done;
    }
    for (Py_ssize_t j = 0; j < ps.nprops; j++) {
        Prop *pr = &ps.props[j];
        PyObject *col;
        if (pr->mode == M_STAY) {
            col = Py_NewRef(Py_None);
        } else {
            Py_ssize_t valid = 0;
            for (Py_ssize_t b = 0; b < bitmap; b++) valid += __builtin_popcount(pr->valid[b]);
            Py_ssize_t nulls = n - valid;
            if (pr->offsets) {
                PyObject *fixes = pr->nfixes ? bytes_of(pr->fixes, (size_t)n) : Py_NewRef(Py_None);
                col = fixes ? Py_BuildValue("((NNN)nN)", bytes_of(pr->valid, (size_t)bitmap),
                                            bytes_of(pr->offsets, (size_t)(n + 1) * 4), bytes_of(pr->text.p, pr->text.len),
                                            nulls, fixes)
                            : NULL;
            } else {
                size_t len = pr->mode == M_BOOL ? (size_t)bitmap : (size_t)n * 8;
                col = Py_BuildValue("((NN)nN)", bytes_of(pr->valid, (size_t)bitmap), bytes_of(pr->fixed, len), nulls,
                                    Py_NewRef(Py_None));
            }
        }
        if (!col) {
            Py_DECREF(columns);
            Py_DECREF(found);
            free(bad);
            goto done;
        }
        PyList_SET_ITEM(columns, j, col);
    }
    result = Py_BuildValue("(NNNN)", columns, any_stay ? bytes_of(stay, (size_t)n) : Py_NewRef(Py_None),
                           nbad ? bytes_of(bad, (size_t)n) : Py_NewRef(Py_None), found);
    free(bad);
    goto done;
nomem:
    PyErr_NoMemory();
done:
    free_props(&ps);
    free(stay);
    if (validity.buf) PyBuffer_Release(&validity);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&modes);
    PyBuffer_Release(&helds);
    return result;
}

static PyMethodDef methods[] = {{"lift", lift, METH_VARARGS, "Read a batch's JSON column into lifted columns."},
                                {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lift", "properties=columns' batch reader in C.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__lift(void) {
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!c_locale) return PyErr_NoMemory();
    return PyModule_Create(&module);
}
