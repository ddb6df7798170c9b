/* SPDX-License-Identifier: Apache-2.0 */
/* A Go text/template subset with Prometheus' template functions, for alert labels/annotations. */
#include "ruleeval.h"
#include "rbuf.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds: a template is user input evaluated on every rule evaluation. */
#define TPL_MAX_DEPTH 64          /* nested {{template}} calls / parse nesting */
#define TPL_MAX_OUT (1u << 20)    /* expanded text */
#define TPL_MAX_RANGE_ITER 100000 /* range iterations per expansion */

/* ---- arena ------------------------------------------------------------------------------ */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct arena {
    struct chunk *head;
    bool oom;
};

static void *aalloc(struct arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!n) n = sizeof(max_align_t);
    struct chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        c = malloc(sizeof(*c) + cap);
        if (!c) {
            a->oom = true;
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static char *astrndup(struct arena *a, const char *s, size_t n) {
    char *p = aalloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void arena_free(struct arena *a) {
    struct chunk *c = a->head;
    while (c) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
}

/* ---- syntax tree -------------------------------------------------------------------------- */

enum akind { A_FIELD, A_VAR, A_DOT, A_IDENT, A_STR, A_NUM, A_BOOL, A_NIL, A_PIPE };

struct pipe;

struct arg {
    enum akind k;
    int line, col;
    const char *name;   /* variable or function name */
    const char **chain; /* field names applied after the operand */
    size_t nchain;
    const char *s; /* string constant (unescaped) */
    size_t slen;
    bool isint; /* number constant kind as Go's idealConstant decides */
    int64_t i;
    double f;
    bool b;
    struct pipe *pipe;
    const char *src; /* source text for error messages */
};

struct cmd {
    struct arg **args;
    size_t nargs;
    const char *src; /* the command's source text: where Go reports a function's error */
};

struct pipe {
    int line, col;
    bool decl, assign;
    const char *vars[2];
    int nvars;
    struct cmd **cmds;
    size_t ncmds;
};

enum nkind { N_LIST, N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH, N_TEMPLATE, N_BREAK, N_CONTINUE };

struct node {
    enum nkind k;
    int line, col;
    const char *text;
    size_t tlen;
    struct pipe *pipe;
    struct node *list, *elselist;
    struct node **kids;
    size_t nkids, capkids;
    const char *tname;
    const char *src; /* N_TEMPLATE: the node as Go prints it, for error messages */
};

struct tdef {
    const char *name;
    struct node *body;
    struct tdef *next;
};

struct template {
    struct arena a;
    char *name;
    struct node *root;
    struct tdef *defs;
};

/* ---- lexer -------------------------------------------------------------------------------- */

enum tok {
    T_EOF,
    T_ERR,
    T_TEXT,
    T_LEFT,
    T_RIGHT,
    T_SPACE,
    T_IDENT,
    T_FIELD,
    T_VAR,
    T_STR,
    T_NUM,
    T_CHAR,
    T_LPAREN,
    T_RPAREN,
    T_PIPE,
    T_DECL,
    T_ASSIGN,
    T_COMMA,
    T_DOT,
    T_BOOL,
    T_NIL,
    T_KW_IF,
    T_KW_ELSE,
    T_KW_END,
    T_KW_RANGE,
    T_KW_WITH,
    T_KW_DEFINE,
    T_KW_TEMPLATE,
    T_KW_BLOCK,
    T_KW_BREAK,
    T_KW_CONTINUE
};

struct lexer {
    const char *s;
    size_t len, pos;
    bool in_action;
    int paren;
    /* current token */
    enum tok t;
    size_t ts, tl;
    int line; /* line of token start */
    int col;
    bool trim_next; /* previous right delimiter had "-" trim */
};

struct parser {
    struct template *t;
    struct lexer lx;
    struct perr *err;
    const char *name;
    bool failed;
    /* a one-token pushback */
    bool have_peek;
    enum tok pt;
    size_t pts, ptl;
    int pline, pcol;
    /* declared variable names, stack */
    const char *vars[256];
    int nvars;
    int depth;
};

static int line_at(const char *s, size_t pos, int *col) {
    int line = 1;
    size_t ls = 0;
    for (size_t i = 0; i < pos; i++)
        if (s[i] == '\n') {
            line++;
            ls = i + 1;
        }
    if (col) *col = (int)(pos - ls);
    return line;
}

static void perrorf(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void perrorf(struct parser *p, int line, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = true;
    char m[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (p->err) {
        p->err->line = line;
        p->err->col = 0;
        snprintf(p->err->msg, sizeof(p->err->msg), "template: %s:%d: %s", p->name, line, m);
    }
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alnum_(char c) {
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* Scans the next token. Text outside actions is one T_TEXT token with trim applied. */
static void lex_next(struct parser *p) {
    struct lexer *l = &p->lx;
    if (p->have_peek) {
        p->have_peek = false;
        l->t = p->pt;
        l->ts = p->pts;
        l->tl = p->ptl;
        l->line = p->pline;
        l->col = p->pcol;
        return;
    }
again:
    l->ts = l->pos;
    l->line = line_at(l->s, l->pos, &l->col);
    if (!l->in_action) {
        if (l->pos >= l->len) {
            l->t = T_EOF;
            l->tl = 0;
            return;
        }
        const char *st = l->s + l->pos;
        const char *e = NULL;
        for (size_t i = l->pos; i + 1 < l->len; i++)
            if (l->s[i] == '{' && l->s[i + 1] == '{') {
                e = l->s + i;
                break;
            }
        size_t end = e ? (size_t)(e - l->s) : l->len;
        size_t start = l->pos;
        if (l->trim_next) {
            while (start < end && is_space(l->s[start]))
                start++;
            l->trim_next = false;
        }
        size_t tend = end;
        /* "{{- " trims the whitespace before it */
        if (e && end + 3 < l->len && l->s[end + 2] == '-' && is_space(l->s[end + 3]))
            while (tend > start && is_space(l->s[tend - 1]))
                tend--;
        (void)st;
        if (end > l->pos) {
            l->t = T_TEXT;
            l->ts = start;
            l->tl = tend > start ? tend - start : 0;
            l->pos = end;
            return;
        }
        l->trim_next = false;
        /* at "{{" */
        l->pos += 2;
        if (l->pos + 1 < l->len && l->s[l->pos] == '-' && is_space(l->s[l->pos + 1])) l->pos += 2;
        /* comment */
        size_t q = l->pos;
        while (q < l->len && is_space(l->s[q]))
            q++;
        if (q + 1 < l->len && l->s[q] == '/' && l->s[q + 1] == '*') {
            const char *ce = NULL;
            for (size_t i = q + 2; i + 1 < l->len; i++)
                if (l->s[i] == '*' && l->s[i + 1] == '/') {
                    ce = l->s + i;
                    break;
                }
            if (!ce) {
                l->t = T_ERR;
                l->ts = (size_t)(q);
                perrorf(p, l->line, "unclosed comment");
                return;
            }
            size_t r = (size_t)(ce - l->s) + 2;
            while (r < l->len && is_space(l->s[r]))
                r++;
            bool trim = false;
            if (r < l->len && l->s[r] == '-') {
                trim = true;
                r++;
            }
            if (r + 1 < l->len + 0 && l->s[r] == '}' && l->s[r + 1] == '}') {
                l->pos = r + 2;
                l->trim_next = trim;
                goto again;
            }
            l->t = T_ERR;
            perrorf(p, l->line, "comment ends before closing delimiter");
            return;
        }
        l->in_action = true;
        l->paren = 0;
        l->t = T_LEFT;
        l->tl = 2;
        return;
    }
    /* inside an action */
    size_t i = l->pos;
    if (i >= l->len) {
        l->t = T_ERR;
        perrorf(p, l->line, "unclosed action");
        return;
    }
    char c = l->s[i];
    if (is_space(c)) {
        size_t j = i;
        while (j < l->len && is_space(l->s[j]))
            j++;
        /* " -}}" */
        if (j + 2 < l->len + 0 && l->s[j] == '-' && l->s[j + 1] == '}' && l->s[j + 2] == '}') {
            l->pos = j + 3;
            l->in_action = false;
            l->trim_next = true;
            l->t = T_RIGHT;
            return;
        }
        if (j + 1 < l->len && l->s[j] == '}' && l->s[j + 1] == '}') {
            l->pos = j;
            goto again;
        }
        l->pos = j;
        l->t = T_SPACE;
        l->tl = j - i;
        return;
    }
    if (c == '}' && i + 1 < l->len && l->s[i + 1] == '}') {
        if (l->paren) {
            l->t = T_ERR;
            perrorf(p, l->line, "unclosed left paren");
            return;
        }
        l->pos = i + 2;
        l->in_action = false;
        l->t = T_RIGHT;
        return;
    }
    l->tl = 1;
    switch (c) {
    case '(':
        l->paren++;
        l->pos++;
        l->t = T_LPAREN;
        return;
    case ')':
        l->paren--;
        l->pos++;
        if (l->paren < 0) {
            l->t = T_ERR;
            perrorf(p, l->line, "unexpected right paren");
            return;
        }
        l->t = T_RPAREN;
        return;
    case '|':
        l->pos++;
        l->t = T_PIPE;
        return;
    case ',':
        l->pos++;
        l->t = T_COMMA;
        return;
    case '=':
        l->pos++;
        l->t = T_ASSIGN;
        return;
    case ':':
        if (i + 1 < l->len && l->s[i + 1] == '=') {
            l->pos += 2;
            l->tl = 2;
            l->t = T_DECL;
            return;
        }
        l->t = T_ERR;
        perrorf(p, l->line, "expected :=");
        return;
    case '"': {
        size_t j = i + 1;
        while (j < l->len && l->s[j] != '"') {
            if (l->s[j] == '\\' && j + 1 < l->len)
                j++;
            else if (l->s[j] == '\n')
                break;
            j++;
        }
        if (j >= l->len || l->s[j] != '"') {
            l->t = T_ERR;
            perrorf(p, l->line, "unterminated quoted string");
            return;
        }
        l->pos = j + 1;
        l->tl = l->pos - i;
        l->t = T_STR;
        return;
    }
    case '`': {
        size_t j = i + 1;
        while (j < l->len && l->s[j] != '`')
            j++;
        if (j >= l->len) {
            l->t = T_ERR;
            perrorf(p, l->line, "unterminated raw quoted string");
            return;
        }
        l->pos = j + 1;
        l->tl = l->pos - i;
        l->t = T_STR;
        return;
    }
    case '\'': {
        size_t j = i + 1;
        while (j < l->len && l->s[j] != '\'') {
            if (l->s[j] == '\\') j++;
            j++;
        }
        if (j >= l->len) {
            l->t = T_ERR;
            perrorf(p, l->line, "unterminated character constant");
            return;
        }
        l->pos = j + 1;
        l->tl = l->pos - i;
        l->t = T_CHAR;
        return;
    }
    case '$': {
        size_t j = i + 1;
        while (j < l->len && is_alnum_(l->s[j]))
            j++;
        l->pos = j;
        l->tl = j - i;
        l->t = T_VAR;
        return;
    }
    case '.':
        if (i + 1 < l->len && isdigit((unsigned char)l->s[i + 1])) break; /* number */
        {
            size_t j = i + 1;
            while (j < l->len && is_alnum_(l->s[j]))
                j++;
            l->pos = j;
            l->tl = j - i;
            l->t = j == i + 1 ? T_DOT : T_FIELD;
            return;
        }
    default:
        break;
    }
    if (isdigit((unsigned char)c) || c == '.' || c == '+' || c == '-') {
        size_t j = i;
        if (l->s[j] == '+' || l->s[j] == '-') j++;
        while (j < l->len && (isalnum((unsigned char)l->s[j]) || l->s[j] == '.' || l->s[j] == '_' ||
                              ((l->s[j] == '+' || l->s[j] == '-') && j > i &&
                               (l->s[j - 1] == 'e' || l->s[j - 1] == 'E' || l->s[j - 1] == 'p' ||
                                l->s[j - 1] == 'P'))))
            j++;
        l->pos = j;
        l->tl = j - i;
        l->t = T_NUM;
        return;
    }
    if (is_alnum_(c)) {
        size_t j = i;
        while (j < l->len && is_alnum_(l->s[j]))
            j++;
        l->pos = j;
        l->tl = j - i;
        static const struct {
            const char *w;
            enum tok t;
        } kw[] = {{"if", T_KW_IF},
                  {"else", T_KW_ELSE},
                  {"end", T_KW_END},
                  {"range", T_KW_RANGE},
                  {"with", T_KW_WITH},
                  {"define", T_KW_DEFINE},
                  {"template", T_KW_TEMPLATE},
                  {"block", T_KW_BLOCK},
                  {"break", T_KW_BREAK},
                  {"continue", T_KW_CONTINUE},
                  {"true", T_BOOL},
                  {"false", T_BOOL},
                  {"nil", T_NIL}};
        l->t = T_IDENT;
        for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++)
            if (strlen(kw[k].w) == l->tl && memcmp(kw[k].w, l->s + i, l->tl) == 0) l->t = kw[k].t;
        return;
    }
    l->t = T_ERR;
    perrorf(p, l->line, "unexpected \"%c\" in command", c);
}

/* next token, skipping spaces */
static void next_ns(struct parser *p) {
    do
        lex_next(p);
    while (p->lx.t == T_SPACE);
}

static void unread(struct parser *p) {
    p->have_peek = true;
    p->pt = p->lx.t;
    p->pts = p->lx.ts;
    p->ptl = p->lx.tl;
    p->pline = p->lx.line;
    p->pcol = p->lx.col;
}

/* ---- parser -------------------------------------------------------------------------------- */

static void go_quote(struct rbuf *b, const char *s, size_t n);

static struct node *new_node(struct parser *p, enum nkind k) {
    struct node *n = aalloc(&p->t->a, sizeof(*n));
    if (n) {
        n->k = k;
        n->line = p->lx.line;
        n->col = p->lx.col;
    }
    return n;
}

static bool add_kid(struct parser *p, struct node *list, struct node *kid) {
    if (list->nkids == list->capkids) {
        size_t nc = list->capkids ? list->capkids * 2 : 8;
        struct node **nk = aalloc(&p->t->a, nc * sizeof(*nk));
        if (!nk) return false;
        if (list->nkids) memcpy(nk, list->kids, list->nkids * sizeof(*nk));
        list->kids = nk;
        list->capkids = nc;
    }
    list->kids[list->nkids++] = kid;
    return true;
}

static const char *tok_str(struct parser *p) {
    return astrndup(&p->t->a, p->lx.s + p->lx.ts, p->lx.tl);
}

/* Unquotes a Go string literal (interpreted or raw). */
static bool unquote(struct parser *p, const char *s, size_t n, const char **out, size_t *outlen) {
    char *r = aalloc(&p->t->a, n + 1);
    if (!r) return false;
    size_t k = 0;
    if (s[0] == '`') {
        for (size_t i = 1; i + 1 < n; i++)
            if (s[i] != '\r') r[k++] = s[i];
    } else {
        for (size_t i = 1; i + 1 < n; i++) {
            char c = s[i];
            if (c != '\\') {
                r[k++] = c;
                continue;
            }
            c = s[++i];
            switch (c) {
            case 'n':
                r[k++] = '\n';
                break;
            case 't':
                r[k++] = '\t';
                break;
            case 'r':
                r[k++] = '\r';
                break;
            case 'a':
                r[k++] = '\a';
                break;
            case 'b':
                r[k++] = '\b';
                break;
            case 'f':
                r[k++] = '\f';
                break;
            case 'v':
                r[k++] = '\v';
                break;
            case '\\':
                r[k++] = '\\';
                break;
            case '"':
                r[k++] = '"';
                break;
            case '\'':
                r[k++] = '\'';
                break;
            case 'x': {
                if (i + 2 >= n) return false;
                char h[3] = {s[i + 1], s[i + 2], 0};
                char *e;
                long v = strtol(h, &e, 16);
                if (*e) return false;
                r[k++] = (char)v;
                i += 2;
                break;
            }
            case 'u':
            case 'U': {
                size_t nd = c == 'u' ? 4 : 8;
                if (i + nd >= n) return false;
                char h[9] = {0};
                memcpy(h, s + i + 1, nd);
                char *e;
                unsigned long v = strtoul(h, &e, 16);
                if (*e || v > 0x10ffff) return false;
                i += nd;
                if (v < 0x80)
                    r[k++] = (char)v;
                else if (v < 0x800) {
                    r[k++] = (char)(0xc0 | (v >> 6));
                    r[k++] = (char)(0x80 | (v & 0x3f));
                } else if (v < 0x10000) {
                    r[k++] = (char)(0xe0 | (v >> 12));
                    r[k++] = (char)(0x80 | ((v >> 6) & 0x3f));
                    r[k++] = (char)(0x80 | (v & 0x3f));
                } else {
                    r[k++] = (char)(0xf0 | (v >> 18));
                    r[k++] = (char)(0x80 | ((v >> 12) & 0x3f));
                    r[k++] = (char)(0x80 | ((v >> 6) & 0x3f));
                    r[k++] = (char)(0x80 | (v & 0x3f));
                }
                break;
            }
            default:
                return false;
            }
        }
    }
    r[k] = '\0';
    *out = r;
    *outlen = k;
    return true;
}

/* The function names the parser accepts (Go checks them at parse time). */
static const char *const func_names[] = {
    "and", "or", "not", "len", "index", "print", "printf", "println", "html", "js", "urlquery",
    "eq", "ne", "lt", "le", "gt", "ge", "slice", "call",
    /* Prometheus */
    "query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml", "match",
    "title", "toUpper", "toLower", "graphLink", "tableLink", "sortByLabel", "humanize",
    "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "toTime",
    "toDuration", "now", "pathPrefix", "externalURL", "parseDuration", "stripPort", "stripDomain",
    "urlQueryEscape", "tmpl"};

static bool func_known(const char *n) {
    for (size_t i = 0; i < sizeof(func_names) / sizeof(func_names[0]); i++)
        if (strcmp(func_names[i], n) == 0) return true;
    return false;
}

static bool var_known(struct parser *p, const char *n) {
    for (int i = p->nvars - 1; i >= 0; i--)
        if (strcmp(p->vars[i], n) == 0) return true;
    return false;
}

static struct pipe *parse_pipe(struct parser *p, bool ctx_range, enum tok end);

/* Parses field chain continuations (".a.b") directly following an operand. */
static bool parse_chain(struct parser *p, struct arg *a) {
    for (;;) {
        lex_next(p);
        if (p->lx.t != T_FIELD) {
            unread(p);
            return true;
        }
        const char **nc = aalloc(&p->t->a, (a->nchain + 1) * sizeof(*nc));
        if (!nc) return false;
        if (a->nchain) memcpy(nc, a->chain, a->nchain * sizeof(*nc));
        nc[a->nchain++] = astrndup(&p->t->a, p->lx.s + p->lx.ts + 1, p->lx.tl - 1);
        a->chain = nc;
    }
}

static bool parse_number(struct parser *p, const char *s, struct arg *a) {
    char *e;
    const char *q = s;
    /* Go accepts underscores and 0x/0o/0b; keep decimal, hex and floats */
    errno = 0;
    bool has_fp = strpbrk(q, ".eEpP") != NULL && !(q[0] == '0' && (q[1] == 'x' || q[1] == 'X'));
    if (!has_fp) {
        long long v = strtoll(q, &e, 0);
        if (*e == '\0' && errno == 0 && !(q[0] == '0' && q[1] && isdigit((unsigned char)q[1]))) {
            a->isint = true;
            a->i = v;
            a->f = (double)v;
            return true;
        }
        if (q[0] == '0' && q[1] && isdigit((unsigned char)q[1])) { /* Go octal */
            v = strtoll(q, &e, 8);
            if (*e == '\0') {
                a->isint = true;
                a->i = v;
                a->f = (double)v;
                return true;
            }
        }
    }
    errno = 0;
    double d = strtod(q, &e);
    if (*e != '\0' || e == q) {
        perrorf(p, p->lx.line, "bad number syntax: \"%s\"", s);
        return false;
    }
    a->isint = false;
    a->f = d;
    return true;
}

/* Parses one operand. Returns NULL when the current token starts no operand (unread). */
static struct arg *parse_operand(struct parser *p) {
    struct arg *a = aalloc(&p->t->a, sizeof(*a));
    if (!a) return NULL;
    a->line = p->lx.line;
    a->col = p->lx.col;
    a->src = tok_str(p);
    switch (p->lx.t) {
    case T_FIELD: {
        a->k = A_FIELD;
        unread(p);
        if (!parse_chain(p, a)) return NULL;
        return a;
    }
    case T_VAR:
        a->k = A_VAR;
        a->name = tok_str(p);
        if (!var_known(p, a->name)) {
            perrorf(p, p->lx.line, "undefined variable \"%s\"", a->name);
            return NULL;
        }
        if (!parse_chain(p, a)) return NULL;
        return a;
    case T_DOT:
        a->k = A_DOT;
        return a;
    case T_IDENT:
        a->k = A_IDENT;
        a->name = tok_str(p);
        if (!func_known(a->name)) {
            perrorf(p, p->lx.line, "function \"%s\" not defined", a->name);
            return NULL;
        }
        return a;
    case T_STR:
        a->k = A_STR;
        if (!unquote(p, p->lx.s + p->lx.ts, p->lx.tl, &a->s, &a->slen)) {
            perrorf(p, p->lx.line, "invalid syntax");
            return NULL;
        }
        return a;
    case T_CHAR: {
        const char *cs;
        size_t cl;
        if (!unquote(p, p->lx.s + p->lx.ts, p->lx.tl, &cs, &cl) || cl == 0) {
            perrorf(p, p->lx.line, "malformed character constant");
            return NULL;
        }
        a->k = A_NUM;
        a->isint = true;
        a->i = (unsigned char)cs[0];
        a->f = (double)a->i;
        return a;
    }
    case T_NUM:
        a->k = A_NUM;
        if (!parse_number(p, a->src, a)) return NULL;
        return a;
    case T_BOOL:
        a->k = A_BOOL;
        a->b = p->lx.s[p->lx.ts] == 't';
        return a;
    case T_NIL:
        a->k = A_NIL;
        return a;
    case T_LPAREN: {
        a->k = A_PIPE;
        a->pipe = parse_pipe(p, false, T_RPAREN);
        if (!a->pipe) return NULL;
        if (!parse_chain(p, a)) return NULL;
        return a;
    }
    default:
        unread(p);
        return NULL;
    }
}

/* Parses a pipeline up to the token `end` (T_RIGHT or T_RPAREN), consuming it. */
static struct pipe *parse_pipe(struct parser *p, bool ctx_range, enum tok end) {
    struct pipe *pp = aalloc(&p->t->a, sizeof(*pp));
    if (!pp) return NULL;
    pp->line = p->lx.line;
    pp->col = p->lx.col;
    /* declarations: $x := / $x = / $i, $v := (range only) */
    next_ns(p);
    if (p->lx.t == T_VAR) {
        size_t save_pos = p->lx.pos;
        struct lexer save = p->lx;
        const char *v1 = tok_str(p);
        next_ns(p);
        if (p->lx.t == T_DECL || p->lx.t == T_ASSIGN || (p->lx.t == T_COMMA && ctx_range)) {
            pp->vars[pp->nvars++] = v1;
            if (p->lx.t == T_COMMA) {
                next_ns(p);
                if (p->lx.t != T_VAR) {
                    perrorf(p, p->lx.line, "range can only initialize variables");
                    return NULL;
                }
                pp->vars[pp->nvars++] = tok_str(p);
                next_ns(p);
                if (p->lx.t != T_DECL && p->lx.t != T_ASSIGN) {
                    perrorf(p, p->lx.line, "expected := or = in range");
                    return NULL;
                }
            }
            if (p->lx.t == T_DECL) {
                pp->decl = true;
            } else {
                pp->assign = true;
                for (int i = 0; i < pp->nvars; i++)
                    if (!var_known(p, pp->vars[i])) {
                        perrorf(p, p->lx.line, "undefined variable \"%s\"", pp->vars[i]);
                        return NULL;
                    }
            }
        } else {
            /* not a declaration: rewind to the variable */
            p->have_peek = false;
            p->lx = save;
            p->lx.pos = save_pos;
            unread(p);
        }
    } else
        unread(p);

    for (;;) {
        next_ns(p);
        if (p->failed) return NULL;
        if (p->lx.t == end) {
            if (pp->ncmds == 0) {
                perrorf(p, p->lx.line, "missing value for %s", "command");
                return NULL;
            }
            break;
        }
        unread(p);
        struct cmd *c = aalloc(&p->t->a, sizeof(*c));
        if (!c) return NULL;
        size_t cap = 0, cstart = 0, cend = 0;
        for (;;) {
            next_ns(p);
            if (p->failed) return NULL;
            if (p->lx.t == T_PIPE) {
                if (c->nargs == 0) {
                    perrorf(p, p->lx.line, "missing value for command");
                    return NULL;
                }
                break;
            }
            if (p->lx.t == end) {
                unread(p);
                break;
            }
            if (c->nargs == 0) cstart = p->lx.ts;
            struct arg *a = parse_operand(p);
            if (!a) {
                if (!p->failed) {
                    next_ns(p);
                    perrorf(p, p->lx.line, "unexpected \"%.*s\" in operand", (int)p->lx.tl,
                            p->lx.s + p->lx.ts);
                }
                return NULL;
            }
            if (c->nargs == cap) {
                size_t nc = cap ? cap * 2 : 4;
                struct arg **na = aalloc(&p->t->a, nc * sizeof(*na));
                if (!na) return NULL;
                if (c->nargs) memcpy(na, c->args, c->nargs * sizeof(*na));
                c->args = na;
                cap = nc;
            }
            c->args[c->nargs++] = a;
            cend = p->lx.ts + p->lx.tl;
            /* operands must be separated by space */
            lex_next(p);
            if (p->lx.t != T_SPACE && p->lx.t != end && p->lx.t != T_PIPE && p->lx.t != T_RPAREN) {
                perrorf(p, p->lx.line, "unexpected \"%.*s\" in operand", (int)p->lx.tl,
                        p->lx.s + p->lx.ts);
                return NULL;
            }
            if (p->lx.t != T_SPACE) unread(p);
        }
        if (c->nargs == 0) {
            perrorf(p, p->lx.line, "missing value for command");
            return NULL;
        }
        if (cend > cstart && !(c->src = astrndup(&p->t->a, p->lx.s + cstart, cend - cstart)))
            return NULL;
        struct cmd **nc = aalloc(&p->t->a, (pp->ncmds + 1) * sizeof(*nc));
        if (!nc) return NULL;
        if (pp->ncmds) memcpy(nc, pp->cmds, pp->ncmds * sizeof(*nc));
        nc[pp->ncmds++] = c;
        pp->cmds = nc;
    }
    /* Go checks: non-executable first operands in later pipeline stages */
    for (size_t i = 1; i < pp->ncmds; i++) {
        enum akind k = pp->cmds[i]->args[0]->k;
        if (k == A_BOOL || k == A_DOT || k == A_NIL || k == A_NUM || k == A_STR) {
            perrorf(p, pp->line, "non executable command in pipeline stage %zu", i + 1);
            return NULL;
        }
    }
    if (pp->decl)
        for (int i = 0; i < pp->nvars; i++) {
            if (p->nvars >= (int)(sizeof(p->vars) / sizeof(p->vars[0]))) {
                perrorf(p, pp->line, "too many variables");
                return NULL;
            }
            p->vars[p->nvars++] = pp->vars[i];
        }
    return pp;
}

enum endkind { END_EOF, END_END, END_ELSE, END_ELSEIF, END_ELSEWITH };

static struct node *parse_list(struct parser *p, enum endkind *how, bool in_range);

/* Parses if/range/with after the keyword. */
static struct node *parse_control(struct parser *p, enum nkind k, bool in_range) {
    struct node *n = new_node(p, k);
    if (!n) return NULL;
    int mark = p->nvars;
    n->pipe = parse_pipe(p, k == N_RANGE, T_RIGHT);
    if (!n->pipe) return NULL;
    enum endkind how;
    n->list = parse_list(p, &how, in_range || k == N_RANGE);
    if (!n->list) return NULL;
    if (how == END_EOF) {
        perrorf(p, p->lx.line, "unexpected EOF");
        return NULL;
    }
    if (how == END_ELSE) {
        n->elselist = parse_list(p, &how, in_range);
        if (!n->elselist) return NULL;
        if (how != END_END) {
            perrorf(p, p->lx.line, how == END_EOF ? "unexpected EOF" : "expected end; found %s",
                    "{{else}}");
            return NULL;
        }
    } else if (how == END_ELSEIF || how == END_ELSEWITH) {
        /* "else if pipe" is sugar for "else {{if pipe}} ... {{end}}{{end}}" */
        struct node *wrap = new_node(p, N_LIST);
        struct node *inner = parse_control(p, how == END_ELSEIF ? N_IF : N_WITH, in_range);
        if (!wrap || !inner || !add_kid(p, wrap, inner)) return NULL;
        n->elselist = wrap;
    }
    p->nvars = mark;
    return n;
}

/* Parses items until {{end}}, {{else}} or EOF; *how says which ended it. */
static struct node *parse_list(struct parser *p, enum endkind *how, bool in_range) {
    struct node *list = new_node(p, N_LIST);
    if (!list) return NULL;
    if (++p->depth > TPL_MAX_DEPTH) {
        perrorf(p, p->lx.line, "template nesting too deep");
        return NULL;
    }
    int mark = p->nvars;
    for (;;) {
        lex_next(p);
        if (p->failed) return NULL;
        if (p->lx.t == T_EOF) {
            *how = END_EOF;
            break;
        }
        if (p->lx.t == T_TEXT) {
            struct node *t = new_node(p, N_TEXT);
            if (!t) return NULL;
            t->text = p->lx.s + p->lx.ts;
            t->tlen = p->lx.tl;
            if (!add_kid(p, list, t)) return NULL;
            continue;
        }
        /* T_LEFT */
        int aline = p->lx.line;
        next_ns(p);
        if (p->failed) return NULL;
        enum tok kt = p->lx.t;
        if (kt == T_KW_END) {
            next_ns(p);
            if (p->lx.t != T_RIGHT) {
                perrorf(p, aline, "unexpected \"%.*s\" in end", (int)p->lx.tl, p->lx.s + p->lx.ts);
                return NULL;
            }
            *how = END_END;
            break;
        }
        if (kt == T_KW_ELSE) {
            next_ns(p);
            if (p->lx.t == T_KW_IF) {
                *how = END_ELSEIF;
                break;
            }
            if (p->lx.t == T_KW_WITH) {
                *how = END_ELSEWITH;
                break;
            }
            if (p->lx.t != T_RIGHT) {
                perrorf(p, aline, "unexpected \"%.*s\" in else", (int)p->lx.tl, p->lx.s + p->lx.ts);
                return NULL;
            }
            *how = END_ELSE;
            break;
        }
        struct node *n = NULL;
        switch (kt) {
        case T_KW_IF:
            n = parse_control(p, N_IF, in_range);
            break;
        case T_KW_RANGE:
            n = parse_control(p, N_RANGE, in_range);
            break;
        case T_KW_WITH:
            n = parse_control(p, N_WITH, in_range);
            break;
        case T_KW_BREAK:
        case T_KW_CONTINUE:
            if (!in_range) {
                perrorf(p, aline, "{{%s}} outside {{range}}",
                        kt == T_KW_BREAK ? "break" : "continue");
                return NULL;
            }
            next_ns(p);
            if (p->lx.t != T_RIGHT) {
                perrorf(p, aline, "unexpected token in {{break}}/{{continue}}");
                return NULL;
            }
            n = new_node(p, kt == T_KW_BREAK ? N_BREAK : N_CONTINUE);
            break;
        case T_KW_TEMPLATE:
        case T_KW_BLOCK: {
            n = new_node(p, N_TEMPLATE);
            if (!n) return NULL;
            next_ns(p);
            const char *nm;
            size_t nl;
            if (p->lx.t != T_STR || !unquote(p, p->lx.s + p->lx.ts, p->lx.tl, &nm, &nl)) {
                perrorf(p, aline, "unexpected \"%.*s\" in template clause", (int)p->lx.tl,
                        p->lx.s + p->lx.ts);
                return NULL;
            }
            n->tname = nm;
            /* Go's TemplateNode sits at its name and prints as {{template "name" pipe}} */
            n->line = p->lx.line;
            n->col = p->lx.col;
            struct rbuf src;
            rbuf_init(&src);
            rbuf_puts(&src, "{{template ");
            go_quote(&src, nm, nl);
            next_ns(p);
            if (p->lx.t != T_RIGHT) {
                size_t ps = p->lx.ts;
                unread(p);
                int vm = p->nvars;
                n->pipe = parse_pipe(p, false, T_RIGHT);
                p->nvars = vm;
                if (!n->pipe) {
                    free(src.p);
                    return NULL;
                }
                size_t pe = p->lx.ts;
                while (pe > ps && (p->lx.s[pe - 1] == ' ' || p->lx.s[pe - 1] == '\t' ||
                                   p->lx.s[pe - 1] == '\n' || p->lx.s[pe - 1] == '\r'))
                    pe--;
                rbuf_putc(&src, ' ');
                rbuf_put(&src, p->lx.s + ps, pe - ps);
            }
            rbuf_puts(&src, "}}");
            n->src = src.p ? astrndup(&p->t->a, src.p, src.len) : NULL;
            free(src.p);
            if (kt == T_KW_BLOCK) {
                /* block = define + template */
                enum endkind h2;
                int vm = p->nvars;
                p->nvars = 1; /* only $ */
                struct node *body = parse_list(p, &h2, false);
                p->nvars = vm;
                if (!body) return NULL;
                if (h2 != END_END) {
                    perrorf(p, aline, "unexpected EOF");
                    return NULL;
                }
                struct tdef *d = aalloc(&p->t->a, sizeof(*d));
                if (!d) return NULL;
                d->name = nm;
                d->body = body;
                d->next = p->t->defs;
                p->t->defs = d;
            }
            break;
        }
        case T_KW_DEFINE: {
            next_ns(p);
            const char *nm;
            size_t nl;
            if (p->lx.t != T_STR || !unquote(p, p->lx.s + p->lx.ts, p->lx.tl, &nm, &nl)) {
                perrorf(p, aline, "unexpected \"%.*s\" in define clause", (int)p->lx.tl,
                        p->lx.s + p->lx.ts);
                return NULL;
            }
            next_ns(p);
            if (p->lx.t != T_RIGHT) {
                perrorf(p, aline, "unexpected \"%.*s\" in define clause", (int)p->lx.tl,
                        p->lx.s + p->lx.ts);
                return NULL;
            }
            /* a definition sees only $ */
            const char *saved[256];
            int sn = p->nvars;
            memcpy(saved, p->vars, sizeof(saved[0]) * (size_t)sn);
            p->vars[0] = "$";
            p->nvars = 1;
            enum endkind h2;
            struct node *body = parse_list(p, &h2, false);
            memcpy(p->vars, saved, sizeof(saved[0]) * (size_t)sn);
            p->nvars = sn;
            if (!body) return NULL;
            if (h2 != END_END) {
                perrorf(p, aline, "unexpected EOF");
                return NULL;
            }
            for (struct tdef *d = p->t->defs; d; d = d->next)
                if (strcmp(d->name, nm) == 0 && d->body->nkids > 0 && body->nkids > 0) {
                    perrorf(p, aline, "template: multiple definition of template \"%s\"", nm);
                    return NULL;
                }
            struct tdef *d = aalloc(&p->t->a, sizeof(*d));
            if (!d) return NULL;
            d->name = nm;
            d->body = body;
            d->next = p->t->defs;
            p->t->defs = d;
            continue;
        }
        default: {
            unread(p);
            n = new_node(p, N_ACTION);
            if (!n) return NULL;
            n->line = aline;
            n->pipe = parse_pipe(p, false, T_RIGHT);
            if (!n->pipe) return NULL;
            break;
        }
        }
        if (!n) {
            if (!p->failed) perrorf(p, aline, "out of memory");
            return NULL;
        }
        if (!add_kid(p, list, n)) return NULL;
    }
    /* variables declared in a list die with it, except at top level */
    if (p->depth > 1) p->nvars = mark;
    p->depth--;
    return list;
}

static const char alert_defs_text[] = "{{$labels := .Labels}}{{$externalLabels := "
                                      ".ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value "
                                      ":= .Value}}";

struct template *template_parse(const char *name, const char *text, size_t len, bool alert_defs,
                                struct perr *err) {
    struct template *t = calloc(1, sizeof(*t));
    if (!t) goto oom;
    t->name = strdup(name ? name : "");
    size_t dl = alert_defs ? strlen(alert_defs_text) : 0;
    char *src = aalloc(&t->a, dl + len + 1);
    if (!t->name || !src) goto oom;
    memcpy(src, alert_defs_text, dl);
    memcpy(src + dl, text, len);
    src[dl + len] = '\0';
    struct parser p = {.t = t, .err = err, .name = t->name};
    p.lx.s = src;
    p.lx.len = dl + len;
    p.vars[0] = "$";
    p.nvars = 1;
    enum endkind how;
    t->root = parse_list(&p, &how, false);
    if (!p.failed && t->a.oom) goto oom;
    if (!p.failed && how != END_EOF)
        perrorf(&p, p.lx.line, "unexpected {{%s}}", how == END_END ? "end" : "else");
    if (p.failed || !t->root) {
        if (!p.failed) perr_set(err, 0, 0, "out of memory");
        template_free(t);
        return NULL;
    }
    return t;
oom:
    perr_set(err, 0, 0, "out of memory");
    template_free(t);
    return NULL;
}

void template_free(struct template *t) {
    if (!t) return;
    arena_free(&t->a);
    free(t->name);
    free(t);
}

/* ---- values ---------------------------------------------------------------------------------- */

enum vkind {
    V_INVALID, /* "no value" */
    V_NIL,
    V_BOOL,
    V_INT,
    V_FLOAT,
    V_STR,
    V_MAP,     /* string-keyed map; strmap: missing key -> "" */
    V_SAMPLE,  /* {Labels, Value} */
    V_SAMPLES, /* query result */
    V_ROOT,    /* the alert template data struct */
    V_TIME,    /* toTime: unix ns */
    V_DUR      /* toDuration: ns */
};

struct tval;

struct tmap {
    size_t n;
    bool strmap;
    const char **keys;
    struct tval *vals;
};

struct tsample {
    struct tmap *labels;
    double value;
};

struct tsamples {
    size_t n;
    struct tsample **v;
};

struct tval {
    enum vkind k;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        struct tmap *m;
        struct tsample *smp;
        struct tsamples *l;
        const struct exec *root; /* V_ROOT */
    } u;
};

struct var {
    const char *name;
    struct tval v;
};

struct exec {
    const struct template *t;
    const struct template_data *d;
    struct arena a;
    struct rbuf out;
    struct rbuf err;
    bool failed;
    struct var vars[512];
    int nvars, base;
    int depth;
    long iters;
    struct tmap *root_labels, *root_ext;
    const char *cur_name;
    const struct node *cur_node;
    const struct arg *cur_arg;
    const char *call_src; /* the command of the function being called (see call_func) */
};

enum flow { F_NORMAL, F_BREAK, F_CONTINUE, F_ERR };

static struct tval vstr(const char *s, size_t n) {
    struct tval v = {.k = V_STR};
    v.u.s.p = s;
    v.u.s.n = n;
    return v;
}

static struct tval vfloat(double f) {
    struct tval v = {.k = V_FLOAT};
    v.u.f = f;
    return v;
}

static struct tval vint(int64_t i) {
    struct tval v = {.k = V_INT};
    v.u.i = i;
    return v;
}

static struct tval vbool(bool b) {
    struct tval v = {.k = V_BOOL};
    v.u.b = b;
    return v;
}

static void vxerr_at(struct exec *x, int line, int col, const char *src, const char *fmt,
                     va_list ap) {
    if (x->failed) return;
    x->failed = true;
    char m[256];
    vsnprintf(m, sizeof(m), fmt, ap);
    /* Go's evalCall: an error a function returns is "error calling <fn>: ..." at its command */
    if (!strncmp(m, "error calling ", 14) && x->call_src) src = x->call_src;
    rbuf_printf(&x->err, "template: %s:%d:%d: executing \"%s\" at <%s>: %s", x->t->name, line, col,
                x->cur_name, src ? src : "", m);
}

/* An error at a given node (line, 0-based byte column, Go's String() of the node). */
static void xerr_at(struct exec *x, int line, int col, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void xerr_at(struct exec *x, int line, int col, const char *src, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vxerr_at(x, line, col, src, fmt, ap);
    va_end(ap);
}

static void xerr(struct exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xerr(struct exec *x, const char *fmt, ...) {
    /* Go's ErrorContext: the line and 0-based byte column of the node being evaluated */
    int line = x->cur_arg ? x->cur_arg->line : x->cur_node ? x->cur_node->line : 0;
    int col = x->cur_arg ? x->cur_arg->col : x->cur_node ? x->cur_node->col : 0;
    va_list ap;
    va_start(ap, fmt);
    vxerr_at(x, line, col, x->cur_arg ? x->cur_arg->src : NULL, fmt, ap);
    va_end(ap);
}

static struct tmap *labels_map(struct exec *x, const struct re_label *l, size_t n) {
    struct tmap *m = aalloc(&x->a, sizeof(*m));
    if (!m) return NULL;
    m->strmap = true;
    m->n = n;
    m->keys = aalloc(&x->a, (n + 1) * sizeof(*m->keys));
    m->vals = aalloc(&x->a, (n + 1) * sizeof(*m->vals));
    if (!m->keys || !m->vals) return NULL;
    for (size_t i = 0; i < n; i++) {
        m->keys[i] = l[i].name;
        m->vals[i] = vstr(l[i].value, strlen(l[i].value));
    }
    /* keep keys sorted (label sets normally are) for Go's sorted map printing */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(m->keys[j - 1], m->keys[j]) > 0; j--) {
            const char *tk = m->keys[j];
            m->keys[j] = m->keys[j - 1];
            m->keys[j - 1] = tk;
            struct tval tv = m->vals[j];
            m->vals[j] = m->vals[j - 1];
            m->vals[j - 1] = tv;
        }
    return m;
}

static bool map_get(const struct tmap *m, const char *k, struct tval *out) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], k) == 0) {
            *out = m->vals[i];
            return true;
        }
    if (m->strmap)
        *out = vstr("", 0);
    else
        out->k = V_INVALID;
    return false;
}

static const char *type_name(const struct tval *v) {
    switch (v->k) {
    case V_INVALID:
        return "<nil>";
    case V_NIL:
        return "<nil>";
    case V_BOOL:
        return "bool";
    case V_INT:
        return "int";
    case V_FLOAT:
        return "float64";
    case V_STR:
        return "string";
    case V_MAP:
        return v->u.m->strmap ? "map[string]string" : "map[string]interface {}";
    case V_SAMPLE:
        return "*template.sample";
    case V_SAMPLES:
        return "template.queryResult";
    case V_ROOT:
        return "struct { Labels map[string]string; ExternalLabels map[string]string; "
               "ExternalURL string; Value interface {} }";
    case V_TIME:
        return "time.Time";
    case V_DUR:
        return "time.Duration";
    }
    return "?";
}

static void fmt_time(struct rbuf *b, int64_t ns) {
    /* Go's Time.String() in UTC: "2006-01-02 15:04:05.999999999 +0000 UTC" */
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    struct rbuf t;
    rbuf_init(&t);
    rbuf_rfc3339(&t, sec * 1000, 3);
    if (t.p && t.len >= 19) {
        t.p[10] = ' ';
        rbuf_put(b, t.p, 19);
    }
    rbuf_fini(&t);
    if (frac) {
        char f[16];
        snprintf(f, sizeof(f), "%09" PRId64, frac);
        size_t n = 9;
        while (n && f[n - 1] == '0')
            n--;
        rbuf_putc(b, '.');
        rbuf_put(b, f, n);
    }
    rbuf_puts(b, " +0000 UTC");
}

/* Appends v as Go's fmt %v. */
static void fmt_value(struct rbuf *b, const struct tval *v) {
    switch (v->k) {
    case V_INVALID:
        rbuf_puts(b, "<no value>");
        break;
    case V_NIL:
        rbuf_puts(b, "<nil>");
        break;
    case V_BOOL:
        rbuf_puts(b, v->u.b ? "true" : "false");
        break;
    case V_INT:
        rbuf_printf(b, "%" PRId64, v->u.i);
        break;
    case V_FLOAT:
        rbuf_gofloat(b, v->u.f, 'g');
        break;
    case V_STR:
        rbuf_put(b, v->u.s.p, v->u.s.n);
        break;
    case V_MAP:
        rbuf_puts(b, "map[");
        for (size_t i = 0; i < v->u.m->n; i++) {
            if (i) rbuf_putc(b, ' ');
            rbuf_puts(b, v->u.m->keys[i]);
            rbuf_putc(b, ':');
            fmt_value(b, &v->u.m->vals[i]);
        }
        rbuf_putc(b, ']');
        break;
    case V_SAMPLE: {
        struct tval lm = {.k = V_MAP};
        lm.u.m = v->u.smp->labels;
        rbuf_puts(b, "&{");
        fmt_value(b, &lm);
        rbuf_putc(b, ' ');
        rbuf_gofloat(b, v->u.smp->value, 'g');
        rbuf_putc(b, '}');
        break;
    }
    case V_SAMPLES:
        rbuf_putc(b, '[');
        for (size_t i = 0; i < v->u.l->n; i++) {
            struct tval e = {.k = V_SAMPLE};
            e.u.smp = v->u.l->v[i];
            if (i) rbuf_putc(b, ' ');
            fmt_value(b, &e);
        }
        rbuf_putc(b, ']');
        break;
    case V_ROOT: { /* %v of the data struct: {Labels ExternalLabels ExternalURL Value} */
        const struct exec *x = v->u.root;
        struct tval m = {.k = V_MAP};
        rbuf_putc(b, '{');
        m.u.m = x->root_labels;
        fmt_value(b, &m);
        rbuf_putc(b, ' ');
        m.u.m = x->root_ext;
        fmt_value(b, &m);
        rbuf_putc(b, ' ');
        rbuf_puts(b, x->d->external_url ? x->d->external_url : "");
        rbuf_putc(b, ' ');
        rbuf_gofloat(b, x->d->value, 'g');
        rbuf_putc(b, '}');
        break;
    }
    case V_TIME:
        fmt_time(b, v->u.i);
        break;
    case V_DUR:
        rbuf_godur(b, v->u.i);
        break;
    }
}

static bool truth(const struct tval *v) {
    switch (v->k) {
    case V_INVALID:
    case V_NIL:
        return false;
    case V_BOOL:
        return v->u.b;
    case V_INT:
    case V_TIME:
    case V_DUR:
        return v->u.i != 0;
    case V_FLOAT:
        return v->u.f != 0;
    case V_STR:
        return v->u.s.n != 0;
    case V_MAP:
        return v->u.m->n != 0;
    case V_SAMPLES:
        return v->u.l->n != 0;
    case V_SAMPLE:
    case V_ROOT:
        return true;
    }
    return false;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

static struct tval eval_pipe(struct exec *x, struct tval dot, const struct pipe *pp);
static enum flow exec_list(struct exec *x, struct tval dot, const struct node *list);

static struct tval field_of(struct exec *x, struct tval recv, const char *f) {
    struct tval r = {.k = V_INVALID};
    switch (recv.k) {
    case V_ROOT:
        if (strcmp(f, "Labels") == 0) {
            r.k = V_MAP;
            r.u.m = x->root_labels;
        } else if (strcmp(f, "ExternalLabels") == 0) {
            r.k = V_MAP;
            r.u.m = x->root_ext;
        } else if (strcmp(f, "ExternalURL") == 0) {
            const char *u = x->d->external_url ? x->d->external_url : "";
            r = vstr(u, strlen(u));
        } else if (strcmp(f, "Value") == 0) {
            r = vfloat(x->d->value);
        } else
            xerr(x, "can't evaluate field %s in type %s", f, type_name(&recv));
        return r;
    case V_SAMPLE:
        if (strcmp(f, "Labels") == 0) {
            r.k = V_MAP;
            r.u.m = recv.u.smp->labels;
        } else if (strcmp(f, "Value") == 0)
            r = vfloat(recv.u.smp->value);
        else
            xerr(x, "can't evaluate field %s in type %s", f, type_name(&recv));
        return r;
    case V_MAP:
        map_get(recv.u.m, f, &r);
        return r;
    case V_INVALID:
    case V_NIL:
        xerr(x, "nil pointer evaluating interface {}.%s", f);
        return r;
    default:
        xerr(x, "can't evaluate field %s in type %s", f, type_name(&recv));
        return r;
    }
}

static struct tval apply_chain(struct exec *x, struct tval v, const struct arg *a) {
    for (size_t i = 0; i < a->nchain && !x->failed; i++)
        v = field_of(x, v, a->chain[i]);
    return v;
}

static struct tval *var_lookup(struct exec *x, const char *name) {
    for (int i = x->nvars - 1; i >= x->base; i--)
        if (strcmp(x->vars[i].name, name) == 0) return &x->vars[i].v;
    return NULL;
}

static bool var_push(struct exec *x, const char *name, struct tval v) {
    if (x->nvars >= (int)(sizeof(x->vars) / sizeof(x->vars[0]))) {
        xerr(x, "too many variables");
        return false;
    }
    x->vars[x->nvars].name = name;
    x->vars[x->nvars].v = v;
    x->nvars++;
    return true;
}

static struct tval call_func(struct exec *x, struct tval dot, const struct arg *fn,
                             struct arg *const *args, size_t nargs, const struct tval *final,
                             const char *csrc);

static struct tval eval_arg(struct exec *x, struct tval dot, const struct arg *a) {
    struct tval v = {.k = V_INVALID};
    x->cur_arg = a;
    switch (a->k) {
    case A_FIELD:
        return apply_chain(x, dot, a);
    case A_VAR: {
        struct tval *p = var_lookup(x, a->name);
        if (!p) {
            xerr(x, "undefined variable: %s", a->name);
            return v;
        }
        return apply_chain(x, *p, a);
    }
    case A_DOT:
        return dot;
    case A_IDENT:
        return call_func(x, dot, a, NULL, 0, NULL, a->src);
    case A_STR:
        return vstr(a->s, a->slen);
    case A_NUM:
        return a->isint ? vint(a->i) : vfloat(a->f);
    case A_BOOL:
        return vbool(a->b);
    case A_NIL:
        v.k = V_NIL;
        return v;
    case A_PIPE: {
        int mark = x->nvars;
        v = eval_pipe(x, dot, a->pipe);
        x->nvars = mark;
        if (x->failed) return v;
        return apply_chain(x, v, a);
    }
    }
    return v;
}

static struct tval eval_cmd(struct exec *x, struct tval dot, const struct cmd *c,
                            const struct tval *final) {
    const struct arg *first = c->args[0];
    if (first->k == A_IDENT)
        return call_func(x, dot, first, c->args + 1, c->nargs - 1, final, c->src);
    if (c->nargs > 1 || final) {
        x->cur_arg = first;
        if (first->k == A_FIELD || first->k == A_VAR)
            xerr(x, "%s has arguments but cannot be invoked as function",
                 first->nchain ? first->chain[first->nchain - 1] : first->src);
        else
            xerr(x, "can't give argument to non-function %s", first->src);
        struct tval v = {.k = V_INVALID};
        return v;
    }
    return eval_arg(x, dot, first);
}

static struct tval eval_pipe(struct exec *x, struct tval dot, const struct pipe *pp) {
    struct tval v = {.k = V_INVALID};
    for (size_t i = 0; i < pp->ncmds && !x->failed; i++)
        v = eval_cmd(x, dot, pp->cmds[i], i ? &v : NULL);
    if (x->failed) return v;
    for (int i = 0; i < pp->nvars; i++) {
        if (pp->decl)
            var_push(x, pp->vars[i], v);
        else {
            struct tval *p = var_lookup(x, pp->vars[i]);
            if (p) *p = v;
        }
    }
    return v;
}

/* ---- built-in and Prometheus functions --------------------------------------------------------
 */

/* Prometheus's convertToFloat; its error is the function's, so Go's text/template prefixes
 * "error calling <fn>: ". */
static bool to_float(struct exec *x, const char *fn, const struct tval *v, double *out) {
    switch (v->k) {
    case V_FLOAT:
        *out = v->u.f;
        return true;
    case V_INT:
        *out = (double)v->u.i;
        return true;
    case V_STR: {
        char *tmp = astrndup(&x->a, v->u.s.p, v->u.s.n);
        if (!tmp) return false;
        char *e;
        /* strconv.ParseFloat accepts Inf/NaN spellings, which strtod also does */
        *out = strtod(tmp, &e);
        if (e == tmp || *e) {
            xerr(x, "error calling %s: strconv.ParseFloat: parsing \"%s\": invalid syntax", fn,
                 tmp);
            return false;
        }
        return true;
    }
    case V_DUR:
        *out = (double)v->u.i / 1e9;
        return true;
    case V_TIME:
        *out = (double)v->u.i / 1e9;
        return true;
    default:
        xerr(x, "error calling %s: can't convert %s to float", fn, type_name(v));
        return false;
    }
}

static const char *to_str(struct exec *x, const struct tval *v, const char *fname) {
    if (v->k == V_STR) return astrndup(&x->a, v->u.s.p, v->u.s.n);
    xerr(x, "wrong type for value; expected string; got %s", type_name(v));
    (void)fname;
    return NULL;
}

static struct tval str_of(struct exec *x, struct rbuf *b) {
    if (b->oom) {
        x->a.oom = true;
        xerr(x, "out of memory");
        return vstr("", 0);
    }
    char *s = astrndup(&x->a, b->p ? b->p : "", b->len);
    size_t n = b->len;
    rbuf_fini(b);
    if (!s) return vstr("", 0);
    return vstr(s, n);
}

static void humanize_fmt(struct rbuf *b, double v, const char *suffix) {
    rbuf_gofmt_prec(b, v, 'g', 4, false);
    rbuf_puts(b, suffix);
}

static struct tval fn_humanize(struct exec *x, double v) {
    struct rbuf b;
    rbuf_init(&b);
    if (v == 0 || isnan(v) || isinf(v)) {
        humanize_fmt(&b, v, "");
    } else if (fabs(v) >= 1) {
        static const char *const pre[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
        const char *p = "";
        for (size_t i = 0; i < 8 && fabs(v) >= 1000; i++) {
            p = pre[i];
            v /= 1000;
        }
        humanize_fmt(&b, v, p);
    } else {
        static const char *const pre[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
        const char *p = "";
        for (size_t i = 0; i < 8 && fabs(v) < 1; i++) {
            p = pre[i];
            v *= 1000;
        }
        humanize_fmt(&b, v, p);
    }
    return str_of(x, &b);
}

static struct tval fn_humanize1024(struct exec *x, double v) {
    struct rbuf b;
    rbuf_init(&b);
    if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
        humanize_fmt(&b, v, "");
    } else {
        static const char *const pre[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
        const char *p = "";
        for (size_t i = 0; i < 8 && fabs(v) >= 1024; i++) {
            p = pre[i];
            v /= 1024;
        }
        humanize_fmt(&b, v, p);
    }
    return str_of(x, &b);
}

static struct tval fn_humanize_duration(struct exec *x, double v) {
    struct rbuf b;
    rbuf_init(&b);
    if (isnan(v) || isinf(v)) {
        humanize_fmt(&b, v, "");
    } else if (v == 0) {
        humanize_fmt(&b, v, "s");
    } else if (fabs(v) >= 1) {
        const char *sign = "";
        if (v < 0) {
            sign = "-";
            v = -v;
        }
        int64_t iv = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
        int64_t sec = iv % 60, min = iv / 60 % 60, hr = iv / 3600 % 24, days = iv / 86400;
        if (days)
            rbuf_printf(&b, "%s%" PRId64 "d %" PRId64 "h %" PRId64 "m %" PRId64 "s", sign, days, hr,
                        min, sec);
        else if (hr)
            rbuf_printf(&b, "%s%" PRId64 "h %" PRId64 "m %" PRId64 "s", sign, hr, min, sec);
        else if (min)
            rbuf_printf(&b, "%s%" PRId64 "m %" PRId64 "s", sign, min, sec);
        else {
            rbuf_puts(&b, sign);
            humanize_fmt(&b, v, "s");
        }
    } else {
        static const char *const pre[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
        const char *p = "";
        for (size_t i = 0; i < 8 && fabs(v) < 1; i++) {
            p = pre[i];
            v *= 1000;
        }
        rbuf_gofmt_prec(&b, v, 'g', 4, false);
        rbuf_puts(&b, p);
        rbuf_putc(&b, 's');
    }
    return str_of(x, &b);
}

/* The start of the character class left open at the end of pat (Go reports it from its
 * `[`), or pat itself when none is found. */
static const char *open_class(const char *pat) {
    const char *start = NULL;
    for (const char *p = pat; *p; p++) {
        if (*p == '\\') {
            if (!p[1]) break;
            p++;
        } else if (!start && *p == '[') {
            start = p;
            if (p[1] == '^') p++;
            if (p[1] == ']') p++; /* a leading ] is a literal */
        } else if (start && *p == '[' && p[1] == ':') {
            const char *e = strstr(p + 2, ":]");
            if (e) p = e + 1;
        } else if (start && *p == ']') {
            start = NULL;
        }
    }
    return start ? start : pat;
}

/* Compiles pat as Go's regexp does, reporting a syntax error as Go's regexp/syntax words it
 * for the common cases (PCRE2's text otherwise). reReplaceAll uses regexp.MustCompile, whose
 * panic text the template engine passes on; match uses regexp.MatchString. */
static pcre2_code *compile_re(struct exec *x, const char *fn, const char *pat) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (!re) {
        char m[120];
        const char *expr = pat, *code = m;
        size_t elen = strlen(pat);
        switch (ec) {
        case PCRE2_ERROR_MISSING_SQUARE_BRACKET:
            code = "missing closing ]";
            expr = open_class(pat);
            elen = strlen(expr);
            break;
        case PCRE2_ERROR_MISSING_CLOSING_PARENTHESIS:
            code = "missing closing )";
            break;
        case PCRE2_ERROR_UNMATCHED_CLOSING_PARENTHESIS:
            code = "unexpected )";
            break;
        case PCRE2_ERROR_END_BACKSLASH:
            code = "trailing backslash at end of expression";
            elen = 0;
            break;
        case PCRE2_ERROR_QUANTIFIER_INVALID:
            code = "missing argument to repetition operator";
            /* Go names the operator (with a non-greedy `?`); PCRE2 points at or after it */
            {
                size_t pl = strlen(pat);
                const char *q = NULL;
                if (eo < pl && strchr("*+?", pat[eo]))
                    q = pat + eo;
                else if (eo > 0 && eo <= pl && strchr("*+?", pat[eo - 1]))
                    q = pat + eo - 1;
                if (q) {
                    expr = q;
                    elen = q[1] == '?' ? 2 : 1;
                }
            }
            break;
        default:
            pcre2_get_error_message(ec, (PCRE2_UCHAR *)m, sizeof(m));
        }
        if (!strcmp(fn, "reReplaceAll"))
            xerr(x, "error calling %s: regexp: Compile(`%s`): error parsing regexp: %s: `%.*s`", fn,
                 pat, code, (int)elen, expr);
        else
            xerr(x, "error calling %s: error parsing regexp: %s: `%.*s`", fn, code, (int)elen,
                 expr);
    }
    return re;
}

/* regexp.ReplaceAllString with Go's $name / ${name} expansion. */
static struct tval fn_re_replace_all(struct exec *x, const char *pat, const char *repl,
                                     const char *text) {
    pcre2_code *re = compile_re(x, "reReplaceAll", pat);
    if (!re) return vstr("", 0);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    struct rbuf b;
    rbuf_init(&b);
    size_t len = strlen(text), pos = 0, last = 0;
    int guard = 0;
    while (md && pos <= len && guard++ < 100000) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t ng = pcre2_get_ovector_count(md);
        size_t ms = ov[0], me = ov[1];
        rbuf_put(&b, text + last, ms - last);
        /* expand template */
        for (const char *r = repl; *r;) {
            if (*r != '$') {
                rbuf_putc(&b, *r++);
                continue;
            }
            r++;
            if (*r == '$') {
                rbuf_putc(&b, '$');
                r++;
                continue;
            }
            char name[64];
            size_t nl = 0;
            bool braced = *r == '{';
            const char *q = braced ? r + 1 : r;
            while (*q && (isalnum((unsigned char)*q) || *q == '_') && nl + 1 < sizeof(name))
                name[nl++] = *q++;
            name[nl] = '\0';
            if (nl == 0 || (braced && *q != '}')) {
                rbuf_putc(&b, '$');
                continue;
            }
            r = braced ? q + 1 : q;
            long gi = -1;
            char *e;
            long num = strtol(name, &e, 10);
            if (*e == '\0')
                gi = num;
            else {
                int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
                if (g > 0) gi = g;
            }
            if (gi >= 0 && (uint32_t)gi < ng && ov[2 * gi] != PCRE2_UNSET)
                rbuf_put(&b, text + ov[2 * gi], ov[2 * gi + 1] - ov[2 * gi]);
        }
        last = me;
        if (me == ms) {
            /* empty match: copy one char and move on */
            if (me < len) rbuf_putc(&b, text[me]);
            pos = me + 1;
            last = pos > len ? len : pos;
        } else
            pos = me;
    }
    if (last < len) rbuf_put(&b, text + last, len - last);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return str_of(x, &b);
}

static struct tval fn_match(struct exec *x, const char *pat, const char *text) {
    pcre2_code *re = compile_re(x, "match", pat);
    if (!re) return vbool(false);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return vbool(rc >= 0);
}

/* net.SplitHostPort: returns false when s has no valid port part. */
static bool split_host_port(const char *s, const char **h, size_t *hl, const char **port) {
    const char *c = strrchr(s, ':');
    if (!c) return false;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb + 1 != c) return false;
        *h = s + 1;
        *hl = (size_t)(rb - s - 1);
    } else {
        if (memchr(s, ':', (size_t)(c - s))) return false; /* too many colons */
        *h = s;
        *hl = (size_t)(c - s);
    }
    *port = c + 1;
    return true;
}

static bool looks_ip(const char *h, size_t n) {
    bool colon = false, alldig = true;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == ':')
            colon = true;
        else if (!isdigit((unsigned char)h[i]) && h[i] != '.')
            alldig = false;
    }
    return colon || (alldig && n > 0);
}

static void go_quote(struct rbuf *b, const char *s, size_t n) {
    /* strconv.Quote for printable ASCII/UTF-8 */
    rbuf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            rbuf_puts(b, "\\\"");
            break;
        case '\\':
            rbuf_puts(b, "\\\\");
            break;
        case '\n':
            rbuf_puts(b, "\\n");
            break;
        case '\t':
            rbuf_puts(b, "\\t");
            break;
        case '\r':
            rbuf_puts(b, "\\r");
            break;
        case '\a':
            rbuf_puts(b, "\\a");
            break;
        case '\b':
            rbuf_puts(b, "\\b");
            break;
        case '\f':
            rbuf_puts(b, "\\f");
            break;
        case '\v':
            rbuf_puts(b, "\\v");
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                rbuf_printf(b, "\\x%02x", c);
            else
                rbuf_putc(b, (char)c);
        }
    }
    rbuf_putc(b, '"');
}

static void pad(struct rbuf *b, const char *s, size_t n, int width, bool minus, bool zero) {
    size_t w = width > 0 ? (size_t)width : 0;
    if (n >= w) {
        rbuf_put(b, s, n);
        return;
    }
    if (minus) {
        rbuf_put(b, s, n);
        for (size_t i = n; i < w; i++)
            rbuf_putc(b, ' ');
        return;
    }
    if (zero) {
        size_t sign = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
        rbuf_put(b, s, sign);
        for (size_t i = n; i < w; i++)
            rbuf_putc(b, '0');
        rbuf_put(b, s + sign, n - sign);
        return;
    }
    for (size_t i = n; i < w; i++)
        rbuf_putc(b, ' ');
    rbuf_put(b, s, n);
}

static void bad_verb(struct rbuf *b, char verb, const struct tval *v) {
    rbuf_printf(b, "%%!%c(%s=", verb, v->k == V_INVALID ? "<nil>" : type_name(v));
    fmt_value(b, v);
    rbuf_putc(b, ')');
}

/* Go fmt.Sprintf for the verbs templates use. */
static void go_sprintf(struct rbuf *out, const char *f, size_t flen, const struct tval *args,
                       size_t nargs) {
    size_t ai = 0;
    for (size_t i = 0; i < flen;) {
        if (f[i] != '%') {
            rbuf_putc(out, f[i++]);
            continue;
        }
        i++;
        bool plus = false, minus = false, zero = false, sharp = false, space = false;
        for (; i < flen; i++) {
            if (f[i] == '+')
                plus = true;
            else if (f[i] == '-')
                minus = true;
            else if (f[i] == '0')
                zero = true;
            else if (f[i] == '#')
                sharp = true;
            else if (f[i] == ' ')
                space = true;
            else
                break;
        }
        int width = -1, prec = -1;
        if (i < flen && f[i] == '*') {
            i++;
            if (ai < nargs && args[ai].k == V_INT) width = (int)args[ai].u.i;
            ai++;
        } else
            while (i < flen && isdigit((unsigned char)f[i])) {
                width = (width < 0 ? 0 : width) * 10 + (f[i++] - '0');
                if (width > 10000) width = 10000;
            }
        if (i < flen && f[i] == '.') {
            i++;
            prec = 0;
            if (i < flen && f[i] == '*') {
                i++;
                if (ai < nargs && args[ai].k == V_INT) prec = (int)args[ai].u.i;
                ai++;
            } else
                while (i < flen && isdigit((unsigned char)f[i])) {
                    prec = prec * 10 + (f[i++] - '0');
                    if (prec > 1000) prec = 1000;
                }
        }
        if (i >= flen) {
            rbuf_puts(out, "%!(NOVERB)");
            break;
        }
        char verb = f[i++];
        if (verb == '%') {
            rbuf_putc(out, '%');
            continue;
        }
        if (ai >= nargs) {
            rbuf_printf(out, "%%!%c(MISSING)", verb);
            continue;
        }
        const struct tval *v = &args[ai++];
        struct rbuf t;
        rbuf_init(&t);
        bool numeric = v->k == V_INT || v->k == V_FLOAT;
        switch (verb) {
        case 'v':
            if (v->k == V_FLOAT)
                rbuf_gofmt_prec(&t, v->u.f, 'g', prec, plus);
            else if (v->k == V_STR && sharp)
                go_quote(&t, v->u.s.p, v->u.s.n);
            else {
                if (plus && v->k == V_INT && v->u.i >= 0) rbuf_putc(&t, '+');
                fmt_value(&t, v);
            }
            break;
        case 's':
            if (v->k == V_STR) {
                size_t n = v->u.s.n;
                if (prec >= 0 && (size_t)prec < n) n = (size_t)prec;
                rbuf_put(&t, v->u.s.p, n);
            } else if (v->k == V_MAP || v->k == V_SAMPLES || v->k == V_SAMPLE || v->k == V_TIME ||
                       v->k == V_DUR)
                fmt_value(&t, v);
            else
                bad_verb(&t, verb, v);
            break;
        case 'q':
            if (v->k == V_STR)
                go_quote(&t, v->u.s.p, v->u.s.n);
            else if (v->k == V_INT)
                rbuf_printf(&t, "'%c'", (char)v->u.i);
            else
                bad_verb(&t, verb, v);
            break;
        case 'd':
            if (v->k == V_INT)
                rbuf_printf(&t, "%s%" PRId64,
                            plus && v->u.i >= 0 ? "+" : (space && v->u.i >= 0 ? " " : ""), v->u.i);
            else
                bad_verb(&t, verb, v);
            break;
        case 'x':
        case 'X':
            if (v->k == V_INT) {
                char hx[24];
                uint64_t u = v->u.i < 0 ? (uint64_t)(-(v->u.i + 1)) + 1 : (uint64_t)v->u.i;
                snprintf(hx, sizeof(hx), "%" PRIx64, u);
                if (verb == 'X')
                    for (char *q = hx; *q; q++)
                        *q = (char)toupper((unsigned char)*q);
                rbuf_printf(&t, "%s%s", v->u.i < 0 ? "-" : "", hx);
            } else if (v->k == V_STR)
                for (size_t k = 0; k < v->u.s.n; k++)
                    rbuf_printf(&t, "%02x", (unsigned char)v->u.s.p[k]);
            else
                bad_verb(&t, verb, v);
            break;
        case 'o':
        case 'b':
        case 'c':
        case 'U':
            if (v->k == V_INT) {
                if (verb == 'o')
                    rbuf_printf(&t, "%" PRIo64, v->u.i);
                else if (verb == 'U') /* Go: U+0041, at least four hex digits */
                    rbuf_printf(&t, "U+%04" PRIX64, (uint64_t)v->u.i);
                else if (verb == 'c') {
                    /* the code point as UTF-8; invalid ones are U+FFFD */
                    int64_t c = v->u.i;
                    if (c < 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
                    if (c < 0x80)
                        rbuf_putc(&t, (char)c);
                    else if (c < 0x800)
                        rbuf_printf(&t, "%c%c", (char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)));
                    else if (c < 0x10000)
                        rbuf_printf(&t, "%c%c%c", (char)(0xE0 | (c >> 12)),
                                    (char)(0x80 | ((c >> 6) & 0x3F)), (char)(0x80 | (c & 0x3F)));
                    else
                        rbuf_printf(&t, "%c%c%c%c", (char)(0xF0 | (c >> 18)),
                                    (char)(0x80 | ((c >> 12) & 0x3F)),
                                    (char)(0x80 | ((c >> 6) & 0x3F)), (char)(0x80 | (c & 0x3F)));
                } else {
                    char bits[70];
                    int n = 0;
                    uint64_t u = (uint64_t)v->u.i;
                    do {
                        bits[n++] = (char)('0' + (u & 1));
                        u >>= 1;
                    } while (u && n < 64);
                    while (n)
                        rbuf_putc(&t, bits[--n]);
                }
            } else
                bad_verb(&t, verb, v);
            break;
        case 't':
            if (v->k == V_BOOL)
                rbuf_puts(&t, v->u.b ? "true" : "false");
            else
                bad_verb(&t, verb, v);
            break;
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
            if (v->k == V_FLOAT) {
                char lv = (char)tolower((unsigned char)verb);
                int pr = prec;
                if (pr < 0 && lv != 'g') pr = 6;
                if (pr < 0) {
                    if (plus && !signbit(v->u.f)) rbuf_putc(&t, '+');
                    rbuf_gofloat(&t, v->u.f, 'g');
                } else
                    rbuf_gofmt_prec(&t, v->u.f, lv, pr, plus);
                if (isupper((unsigned char)verb))
                    for (size_t k = 0; k < t.len; k++)
                        if (t.p[k] == 'e') t.p[k] = 'E';
            } else
                bad_verb(&t, verb, v);
            break;
        default:
            bad_verb(&t, verb, v);
            break;
        }
        if (t.p) pad(out, t.p, t.len, width, minus, zero && numeric && !minus);
        rbuf_fini(&t);
    }
    if (ai < nargs) {
        rbuf_puts(out, "%!(EXTRA ");
        for (size_t k = ai; k < nargs; k++) {
            if (k > ai) rbuf_puts(out, ", ");
            rbuf_printf(out, "%s=", type_name(&args[k]));
            fmt_value(out, &args[k]);
        }
        rbuf_putc(out, ')');
    }
}

static int cmp_kind(const struct tval *v) {
    switch (v->k) {
    case V_BOOL:
        return 1;
    case V_INT:
        return 2;
    case V_FLOAT:
        return 3;
    case V_STR:
        return 4;
    default:
        return 0;
    }
}

/* Go's lt/le/... : basic kinds only, same kind (ints of any size compare). Returns -1, 0, 1 or
 * sets an error; *nan is set when floats are unordered. */
static int compare(struct exec *x, const char *fn, const struct tval *a, const struct tval *b,
                   bool ordered, bool *unordered) {
    *unordered = false;
    int ka = cmp_kind(a), kb = cmp_kind(b);
    if (!ka || !kb) {
        if (!ordered && (a->k == V_NIL || a->k == V_INVALID || b->k == V_NIL || b->k == V_INVALID))
            return (a->k == V_NIL || a->k == V_INVALID) && (b->k == V_NIL || b->k == V_INVALID) ? 0
                                                                                                : 1;
        xerr(x, "error calling %s: invalid type for comparison", fn);
        return 0;
    }
    if (ka != kb) {
        xerr(x, "error calling %s: incompatible types for comparison", fn);
        return 0;
    }
    switch (ka) {
    case 1:
        if (ordered) {
            xerr(x, "error calling %s: invalid type for comparison", fn);
            return 0;
        }
        return a->u.b != b->u.b;
    case 2:
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    case 3:
        if (isnan(a->u.f) || isnan(b->u.f)) {
            *unordered = true;
            return 1;
        }
        return a->u.f < b->u.f ? -1 : a->u.f > b->u.f;
    default: {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = memcmp(a->u.s.p, b->u.s.p, n);
        if (c) return c < 0 ? -1 : 1;
        return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
    }
    }
}

struct emit_ctx {
    struct exec *x;
    struct tsamples *l;
    size_t cap;
};

static int query_emit(void *arg, const struct re_label *labels, size_t nlabels, double value) {
    struct emit_ctx *e = arg;
    struct exec *x = e->x;
    if (e->l->n == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 8;
        struct tsample **nv = aalloc(&x->a, nc * sizeof(*nv));
        if (!nv) return -ENOMEM;
        if (e->l->n) memcpy(nv, e->l->v, e->l->n * sizeof(*nv));
        e->l->v = nv;
        e->cap = nc;
    }
    struct tsample *s = aalloc(&x->a, sizeof(*s));
    struct re_label *cp = aalloc(&x->a, (nlabels + 1) * sizeof(*cp));
    if (!s || !cp) return -ENOMEM;
    for (size_t i = 0; i < nlabels; i++) {
        cp[i].name = astrndup(&x->a, labels[i].name, strlen(labels[i].name));
        cp[i].value = astrndup(&x->a, labels[i].value, strlen(labels[i].value));
        if (!cp[i].name || !cp[i].value) return -ENOMEM;
    }
    s->labels = labels_map(x, cp, nlabels);
    if (!s->labels) return -ENOMEM;
    s->value = value;
    e->l->v[e->l->n++] = s;
    return 0;
}

static bool want_args(struct exec *x, const char *name, size_t got, size_t want) {
    if (got != want) {
        xerr(x, "wrong number of args for %s: want %zu got %zu", name, want, got);
        return false;
    }
    return true;
}

static struct tval call_func(struct exec *x, struct tval dot, const struct arg *fn,
                             struct arg *const *args, size_t nargs, const struct tval *final,
                             const char *csrc) {
    const char *name = fn->name;
    struct tval none = {.k = V_INVALID};
    size_t n = nargs + (final ? 1 : 0);

    /* and/or evaluate lazily, returning the deciding argument as Go does */
    if (strcmp(name, "and") == 0 || strcmp(name, "or") == 0) {
        if (n < 1) {
            xerr(x, "wrong number of args for %s: want at least 1 got 0", name);
            return none;
        }
        bool is_and = name[0] == 'a';
        struct tval v = none;
        for (size_t i = 0; i < n; i++) {
            v = i < nargs ? eval_arg(x, dot, args[i]) : *final;
            if (x->failed) return none;
            if (truth(&v) != is_and) return v;
        }
        return v;
    }

    struct tval av[32];
    if (n > 32) {
        xerr(x, "too many arguments to %s", name);
        return none;
    }
    for (size_t i = 0; i < nargs; i++) {
        av[i] = eval_arg(x, dot, args[i]);
        if (x->failed) return none;
    }
    if (final) av[nargs] = *final;
    x->cur_arg = fn;
    x->call_src = csrc; /* errors the function returns are reported at its command */

    struct rbuf b;
    rbuf_init(&b);
    double f;

    if (strcmp(name, "not") == 0) {
        if (!want_args(x, name, n, 1)) return none;
        return vbool(!truth(&av[0]));
    }
    if (strcmp(name, "len") == 0) {
        if (!want_args(x, name, n, 1)) return none;
        switch (av[0].k) {
        case V_STR:
            return vint((int64_t)av[0].u.s.n);
        case V_MAP:
            return vint((int64_t)av[0].u.m->n);
        case V_SAMPLES:
            return vint((int64_t)av[0].u.l->n);
        default:
            xerr(x, "error calling len: len of type %s", type_name(&av[0]));
            return none;
        }
    }
    if (strcmp(name, "index") == 0) {
        if (n < 1) {
            xerr(x, "wrong number of args for index: want at least 1 got 0");
            return none;
        }
        struct tval v = av[0];
        for (size_t i = 1; i < n; i++) {
            if (v.k == V_MAP) {
                if (av[i].k != V_STR) {
                    xerr(x, "error calling index: value has type %s; should be string",
                         type_name(&av[i]));
                    return none;
                }
                const char *k = astrndup(&x->a, av[i].u.s.p, av[i].u.s.n);
                if (!k) return none;
                struct tval r;
                map_get(v.u.m, k, &r);
                v = r;
            } else if (v.k == V_SAMPLES || v.k == V_STR) {
                if (av[i].k != V_INT) {
                    xerr(x, "error calling index: cannot index slice/array with type %s",
                         type_name(&av[i]));
                    return none;
                }
                size_t len = v.k == V_STR ? v.u.s.n : v.u.l->n;
                if (av[i].u.i < 0 || (size_t)av[i].u.i >= len) {
                    xerr(x, "error calling index: index out of range: %" PRId64, av[i].u.i);
                    return none;
                }
                if (v.k == V_STR)
                    v = vint((unsigned char)v.u.s.p[av[i].u.i]);
                else {
                    struct tsample *s = v.u.l->v[av[i].u.i];
                    v.k = V_SAMPLE;
                    v.u.smp = s;
                }
            } else {
                xerr(x, "error calling index: can't index item of type %s", type_name(&v));
                return none;
            }
        }
        return v;
    }
    if (strcmp(name, "print") == 0 || strcmp(name, "println") == 0) {
        bool ln = name[5] == 'l';
        for (size_t i = 0; i < n; i++) {
            /* Sprint adds spaces between operands when neither is a string */
            if (i && (ln || (av[i - 1].k != V_STR && av[i].k != V_STR))) rbuf_putc(&b, ' ');
            fmt_value(&b, &av[i]);
        }
        if (ln) rbuf_putc(&b, '\n');
        return str_of(x, &b);
    }
    if (strcmp(name, "printf") == 0) {
        if (n < 1 || av[0].k != V_STR) {
            xerr(x, "wrong type for value; expected string; got %s",
                 n ? type_name(&av[0]) : "nothing");
            return none;
        }
        go_sprintf(&b, av[0].u.s.p, av[0].u.s.n, av + 1, n - 1);
        return str_of(x, &b);
    }
    if (strcmp(name, "html") == 0 || strcmp(name, "js") == 0 || strcmp(name, "urlquery") == 0) {
        struct rbuf s;
        rbuf_init(&s);
        if (n == 1 && av[0].k == V_STR)
            rbuf_put(&s, av[0].u.s.p, av[0].u.s.n);
        else
            for (size_t i = 0; i < n; i++) {
                if (i && av[i - 1].k != V_STR && av[i].k != V_STR) rbuf_putc(&s, ' ');
                fmt_value(&s, &av[i]);
            }
        const char *p = s.p ? s.p : "";
        if (name[0] == 'h') {
            for (; *p; p++)
                switch (*p) {
                case '<':
                    rbuf_puts(&b, "&lt;");
                    break;
                case '>':
                    rbuf_puts(&b, "&gt;");
                    break;
                case '&':
                    rbuf_puts(&b, "&amp;");
                    break;
                case '\'':
                    rbuf_puts(&b, "&#39;");
                    break;
                case '"':
                    rbuf_puts(&b, "&#34;");
                    break;
                case '\0':
                    rbuf_puts(&b, "\xef\xbf\xbd");
                    break;
                default:
                    rbuf_putc(&b, *p);
                }
        } else if (name[0] == 'j') {
            for (; *p; p++) {
                unsigned char c = (unsigned char)*p;
                switch (c) {
                case '\\':
                    rbuf_puts(&b, "\\\\");
                    break;
                case '\'':
                    rbuf_puts(&b, "\\'");
                    break;
                case '"':
                    rbuf_puts(&b, "\\\"");
                    break;
                case '<':
                    rbuf_puts(&b, "\\u003C");
                    break;
                case '>':
                    rbuf_puts(&b, "\\u003E");
                    break;
                case '&':
                    rbuf_puts(&b, "\\u0026");
                    break;
                case '=':
                    rbuf_puts(&b, "\\u003D");
                    break;
                case '\n':
                    rbuf_puts(&b, "\\n");
                    break;
                case '\r':
                    rbuf_puts(&b, "\\r");
                    break;
                case '\t':
                    rbuf_puts(&b, "\\t");
                    break;
                default:
                    if (c < 0x20)
                        rbuf_printf(&b, "\\u%04X", c);
                    else
                        rbuf_putc(&b, (char)c);
                }
            }
        } else
            rbuf_query_escape(&b, p);
        rbuf_fini(&s);
        return str_of(x, &b);
    }
    if (strcmp(name, "eq") == 0) {
        if (n < 2) {
            xerr(x, "error calling eq: missing argument for comparison");
            return none;
        }
        for (size_t i = 1; i < n; i++) {
            bool un;
            int c = compare(x, name, &av[0], &av[i], false, &un);
            if (x->failed) return none;
            if (c == 0 && !un) return vbool(true);
        }
        return vbool(false);
    }
    if (strcmp(name, "ne") == 0 || strcmp(name, "lt") == 0 || strcmp(name, "le") == 0 ||
        strcmp(name, "gt") == 0 || strcmp(name, "ge") == 0) {
        if (!want_args(x, name, n, 2)) return none;
        bool un;
        bool ordered = name[0] != 'n';
        int c = compare(x, name, &av[0], &av[1], ordered, &un);
        if (x->failed) return none;
        if (un) return vbool(name[0] == 'n');
        if (name[0] == 'n') return vbool(c != 0);
        if (strcmp(name, "lt") == 0) return vbool(c < 0);
        if (strcmp(name, "le") == 0) return vbool(c <= 0);
        if (strcmp(name, "gt") == 0) return vbool(c > 0);
        return vbool(c >= 0);
    }
    if (strcmp(name, "slice") == 0 && n >= 1 && av[0].k == V_STR) {
        /* Go's slice on a string: s[i], s[i:j] in bytes; a third index is an error */
        int64_t idx[2] = {0, (int64_t)av[0].u.s.n};
        if (n > 3) {
            xerr(x, "error calling slice: cannot 3-index slice a string");
            return none;
        }
        for (size_t i = 1; i < n; i++) {
            if (av[i].k != V_INT) {
                xerr(x, "error calling slice: cannot index slice/array with type %s",
                     type_name(&av[i]));
                return none;
            }
            if (av[i].u.i < 0 || av[i].u.i > (int64_t)av[0].u.s.n) {
                xerr(x, "error calling slice: index out of range: %" PRId64, av[i].u.i);
                return none;
            }
            idx[i - 1] = av[i].u.i;
        }
        if (idx[0] > idx[1]) {
            xerr(x, "error calling slice: invalid slice index: %" PRId64 " > %" PRId64, idx[0],
                 idx[1]);
            return none;
        }
        return vstr(av[0].u.s.p + idx[0], (size_t)(idx[1] - idx[0]));
    }
    if (strcmp(name, "slice") == 0 || strcmp(name, "call") == 0) {
        xerr(x, "error calling %s: unsupported", name);
        return none;
    }

    /* ---- Prometheus functions ---- */
    if (strcmp(name, "query") == 0) {
        if (!want_args(x, name, n, 1)) return none;
        const char *q = to_str(x, &av[0], name);
        if (!q) return none;
        struct tsamples *l = aalloc(&x->a, sizeof(*l));
        if (!l) return none;
        struct emit_ctx e = {.x = x, .l = l};
        char eb[160] = "";
        if (!x->d->query) {
            xerr(x, "error calling query: no query function");
            return none;
        }
        int rc = x->d->query(x->d->query_arg, q, x->d->ts_ms, query_emit, &e, eb, sizeof(eb));
        if (rc < 0) {
            xerr(x, "error calling query: %s", eb[0] ? eb : strerror(-rc));
            return none;
        }
        struct tval v = {.k = V_SAMPLES};
        v.u.l = l;
        return v;
    }
    if (strcmp(name, "first") == 0) {
        if (!want_args(x, name, n, 1)) return none;
        if (av[0].k != V_SAMPLES) {
            xerr(x, "wrong type for value; expected template.queryResult; got %s",
                 type_name(&av[0]));
            return none;
        }
        if (av[0].u.l->n == 0) {
            xerr(x, "error calling first: first() called on vector with no elements");
            return none;
        }
        struct tval v = {.k = V_SAMPLE};
        v.u.smp = av[0].u.l->v[0];
        return v;
    }
    if (strcmp(name, "label") == 0 || strcmp(name, "value") == 0 || strcmp(name, "strvalue") == 0) {
        bool isl = name[0] == 'l';
        if (!want_args(x, name, n, isl ? 2 : 1)) return none;
        const struct tval *s = &av[isl ? 1 : 0];
        if (s->k != V_SAMPLE) {
            xerr(x, "wrong type for value; expected *template.sample; got %s", type_name(s));
            return none;
        }
        if (name[0] == 'v') return vfloat(s->u.smp->value);
        const char *ln = isl ? to_str(x, &av[0], name) : "__value__";
        if (!ln) return none;
        struct tval r;
        map_get(s->u.smp->labels, ln, &r);
        return r;
    }
    if (strcmp(name, "args") == 0) {
        struct tmap *m = aalloc(&x->a, sizeof(*m));
        if (!m) return none;
        m->keys = aalloc(&x->a, (n + 1) * sizeof(*m->keys));
        m->vals = aalloc(&x->a, (n + 1) * sizeof(*m->vals));
        if (!m->keys || !m->vals) return none;
        for (size_t i = 0; i < n; i++) {
            char k[24];
            snprintf(k, sizeof(k), "arg%zu", i);
            m->keys[i] = astrndup(&x->a, k, strlen(k));
            m->vals[i] = av[i];
        }
        /* Go prints maps sorted by key: arg0 arg1 arg10 arg2 ... */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && strcmp(m->keys[j - 1], m->keys[j]) > 0; j--) {
                const char *tk = m->keys[j];
                m->keys[j] = m->keys[j - 1];
                m->keys[j - 1] = tk;
                struct tval tv = m->vals[j];
                m->vals[j] = m->vals[j - 1];
                m->vals[j - 1] = tv;
            }
        m->n = n;
        struct tval v = {.k = V_MAP};
        v.u.m = m;
        return v;
    }
    if (strcmp(name, "sortByLabel") == 0) {
        if (!want_args(x, name, n, 2)) return none;
        const char *ln = to_str(x, &av[0], name);
        if (!ln) return none;
        if (av[1].k != V_SAMPLES) {
            xerr(x, "wrong type for value; expected template.queryResult; got %s",
                 type_name(&av[1]));
            return none;
        }
        struct tsamples *l = av[1].u.l;
        /* stable insertion sort (sort.Stable); sorts in place like Go */
        for (size_t i = 1; i < l->n; i++)
            for (size_t j = i; j > 0; j--) {
                struct tval a, c;
                map_get(l->v[j - 1]->labels, ln, &a);
                map_get(l->v[j]->labels, ln, &c);
                bool un;
                if (compare(x, name, &c, &a, true, &un) >= 0) break;
                struct tsample *t = l->v[j];
                l->v[j] = l->v[j - 1];
                l->v[j - 1] = t;
            }
        return av[1];
    }
    if (strcmp(name, "reReplaceAll") == 0) {
        if (!want_args(x, name, n, 3)) return none;
        const char *a0 = to_str(x, &av[0], name), *a1 = to_str(x, &av[1], name),
                   *a2 = to_str(x, &av[2], name);
        if (!a0 || !a1 || !a2) return none;
        return fn_re_replace_all(x, a0, a1, a2);
    }
    if (strcmp(name, "match") == 0) {
        if (!want_args(x, name, n, 2)) return none;
        const char *a0 = to_str(x, &av[0], name), *a1 = to_str(x, &av[1], name);
        if (!a0 || !a1) return none;
        return fn_match(x, a0, a1);
    }
    if (strcmp(name, "title") == 0 || strcmp(name, "toUpper") == 0 ||
        strcmp(name, "toLower") == 0 || strcmp(name, "safeHtml") == 0 ||
        strcmp(name, "stripPort") == 0 || strcmp(name, "stripDomain") == 0 ||
        strcmp(name, "urlQueryEscape") == 0 || strcmp(name, "graphLink") == 0 ||
        strcmp(name, "tableLink") == 0) {
        if (!want_args(x, name, n, 1)) return none;
        const char *s = to_str(x, &av[0], name);
        if (!s) return none;
        size_t sl = strlen(s);
        if (strcmp(name, "title") == 0) {
            bool prev_sep = true;
            for (size_t i = 0; i < sl; i++) {
                unsigned char c = (unsigned char)s[i];
                rbuf_putc(&b, (char)(prev_sep ? toupper(c) : c));
                prev_sep = !(isalnum(c) || c == '_' || c >= 0x80);
            }
        } else if (strcmp(name, "toUpper") == 0) {
            for (size_t i = 0; i < sl; i++)
                rbuf_putc(&b, (char)toupper((unsigned char)s[i]));
        } else if (strcmp(name, "toLower") == 0) {
            for (size_t i = 0; i < sl; i++)
                rbuf_putc(&b, (char)tolower((unsigned char)s[i]));
        } else if (strcmp(name, "stripPort") == 0) {
            const char *h, *port;
            size_t hl;
            if (split_host_port(s, &h, &hl, &port))
                rbuf_put(&b, h, hl);
            else
                rbuf_puts(&b, s);
        } else if (strcmp(name, "stripDomain") == 0) {
            const char *h = s, *port = NULL;
            size_t hl = sl;
            if (!split_host_port(s, &h, &hl, &port)) {
                h = s;
                hl = sl;
                port = NULL;
            }
            if (looks_ip(h, hl))
                rbuf_puts(&b, s);
            else {
                const char *dp = memchr(h, '.', hl);
                rbuf_put(&b, h, dp ? (size_t)(dp - h) : hl);
                if (port) {
                    rbuf_putc(&b, ':');
                    rbuf_puts(&b, port);
                }
            }
        } else if (strcmp(name, "urlQueryEscape") == 0) {
            rbuf_query_escape(&b, s);
        } else if (name[1] == 'r' || name[0] == 't') { /* graphLink / tableLink */
            rbuf_puts(&b, "/graph?g0.expr=");
            rbuf_query_escape(&b, s);
            rbuf_puts(&b, name[0] == 'g' ? "&g0.tab=0" : "&g0.tab=1");
        } else
            rbuf_puts(&b, s); /* safeHtml: text mode, no escaping */
        return str_of(x, &b);
    }
    if (strcmp(name, "humanize") == 0 || strcmp(name, "humanize1024") == 0 ||
        strcmp(name, "humanizeDuration") == 0 || strcmp(name, "humanizePercentage") == 0 ||
        strcmp(name, "humanizeTimestamp") == 0 || strcmp(name, "toTime") == 0 ||
        strcmp(name, "toDuration") == 0) {
        if (!want_args(x, name, n, 1)) return none;
        if (!to_float(x, name, &av[0], &f)) return none;
        if (strcmp(name, "humanize") == 0) return fn_humanize(x, f);
        if (strcmp(name, "humanize1024") == 0) return fn_humanize1024(x, f);
        if (strcmp(name, "humanizeDuration") == 0) return fn_humanize_duration(x, f);
        if (strcmp(name, "humanizePercentage") == 0) {
            rbuf_gofmt_prec(&b, f * 100, 'g', 4, false);
            rbuf_putc(&b, '%');
            return str_of(x, &b);
        }
        if (strcmp(name, "toDuration") == 0) {
            struct tval v = {.k = V_DUR};
            v.u.i = (int64_t)(f * 1e9);
            return v;
        }
        if (isnan(f) || isinf(f)) {
            if (strcmp(name, "toTime") == 0) {
                xerr(x, "error calling toTime: %s", "cannot convert NaN/Inf to time");
                return none;
            }
            humanize_fmt(&b, f, "");
            return str_of(x, &b);
        }
        struct tval v = {.k = V_TIME};
        double ns = f * 1e9;
        if (ns > 9.2e18 || ns < -9.2e18) {
            xerr(x, "error calling %s: %g cannot be represented as a nanoseconds timestamp", name,
                 f);
            return none;
        }
        /* model.TimeFromUnixNano: Prometheus' model.Time has millisecond precision */
        v.u.i = (int64_t)ns / 1000000 * 1000000;
        if (strcmp(name, "toTime") == 0) return v;
        fmt_time(&b, v.u.i);
        return str_of(x, &b);
    }
    if (strcmp(name, "parseDuration") == 0) {
        if (!want_args(x, name, n, 1)) return none;
        const char *s = to_str(x, &av[0], name);
        int64_t ms;
        if (!s) return none;
        if (template_parse_duration(s, &ms) < 0) {
            xerr(x, "error calling parseDuration: not a valid duration string: \"%s\"", s);
            return none;
        }
        return vfloat((double)ms / 1000.0);
    }
    if (strcmp(name, "now") == 0) {
        if (!want_args(x, name, n, 0)) return none;
        return vfloat((double)x->d->ts_ms / 1000.0);
    }
    if (strcmp(name, "externalURL") == 0 || strcmp(name, "pathPrefix") == 0) {
        if (!want_args(x, name, n, 0)) return none;
        const char *u = x->d->external_url ? x->d->external_url : "";
        if (name[0] == 'e') return vstr(u, strlen(u));
        /* the path part of the URL */
        const char *sch = strstr(u, "://");
        const char *path = sch ? strchr(sch + 3, '/') : (u[0] == '/' ? u : NULL);
        if (!path) return vstr("", 0);
        size_t pl = strcspn(path, "?#");
        return vstr(path, pl);
    }
    if (strcmp(name, "tmpl") == 0) {
        return vstr("", 0); /* console templates only */
    }
    xerr(x, "function \"%s\" not defined", name);
    return none;
}

/* ---- statements --------------------------------------------------------------------------------
 */

static const struct node *find_def(const struct template *t, const char *name) {
    for (const struct tdef *d = t->defs; d; d = d->next)
        if (strcmp(d->name, name) == 0) return d->body;
    return NULL;
}

static enum flow exec_node(struct exec *x, struct tval dot, const struct node *n) {
    x->cur_node = n;
    switch (n->k) {
    case N_LIST:
        return exec_list(x, dot, n);
    case N_TEXT:
        rbuf_put(&x->out, n->text, n->tlen);
        break;
    case N_ACTION: {
        struct tval v = eval_pipe(x, dot, n->pipe);
        if (x->failed) return F_ERR;
        if (n->pipe->nvars == 0) fmt_value(&x->out, &v);
        break;
    }
    case N_IF:
    case N_WITH: {
        int mark = x->nvars;
        struct tval v = eval_pipe(x, dot, n->pipe);
        if (x->failed) return F_ERR;
        enum flow fl = F_NORMAL;
        if (truth(&v))
            fl = exec_list(x, n->k == N_WITH ? v : dot, n->list);
        else if (n->elselist)
            fl = exec_list(x, dot, n->elselist);
        x->nvars = mark;
        return fl;
    }
    case N_RANGE: {
        int mark = x->nvars;
        /* evaluate without declaring; range binds per element */
        struct pipe tmp = *n->pipe;
        tmp.nvars = 0;
        struct tval v = eval_pipe(x, dot, &tmp);
        if (x->failed) return F_ERR;
        size_t cnt = 0;
        if (v.k == V_SAMPLES)
            cnt = v.u.l->n;
        else if (v.k == V_MAP)
            cnt = v.u.m->n;
        else if (v.k == V_INT)
            cnt = v.u.i > 0 ? (size_t)v.u.i : 0;
        else if (v.k != V_INVALID && v.k != V_NIL) {
            xerr(x, "range can't iterate over %s", type_name(&v));
            return F_ERR;
        }
        for (size_t i = 0; i < cnt; i++) {
            if (++x->iters > TPL_MAX_RANGE_ITER) {
                xerr(x, "range iteration limit exceeded");
                return F_ERR;
            }
            struct tval key, el;
            if (v.k == V_SAMPLES) {
                key = vint((int64_t)i);
                el.k = V_SAMPLE;
                el.u.smp = v.u.l->v[i];
            } else if (v.k == V_MAP) {
                key = vstr(v.u.m->keys[i], strlen(v.u.m->keys[i]));
                el = v.u.m->vals[i];
            } else {
                key = vint((int64_t)i);
                el = key;
            }
            int m2 = x->nvars;
            if (n->pipe->nvars == 1) {
                if (n->pipe->decl)
                    var_push(x, n->pipe->vars[0], el);
                else if (var_lookup(x, n->pipe->vars[0]))
                    *var_lookup(x, n->pipe->vars[0]) = el;
            } else if (n->pipe->nvars == 2) {
                if (n->pipe->decl) {
                    var_push(x, n->pipe->vars[0], key);
                    var_push(x, n->pipe->vars[1], el);
                } else {
                    struct tval *a = var_lookup(x, n->pipe->vars[0]);
                    struct tval *c = var_lookup(x, n->pipe->vars[1]);
                    if (a) *a = key;
                    if (c) *c = el;
                }
            }
            enum flow fl = exec_list(x, el, n->list);
            x->nvars = m2;
            if (fl == F_ERR) return F_ERR;
            if (fl == F_BREAK) break;
        }
        if (cnt == 0 && n->elselist) {
            enum flow fl = exec_list(x, dot, n->elselist);
            if (fl == F_ERR) return F_ERR;
        }
        x->nvars = mark;
        break;
    }
    case N_TEMPLATE: {
        const struct node *body = find_def(x->t, n->tname);
        if (!body) {
            struct rbuf q;
            rbuf_init(&q);
            go_quote(&q, n->tname, strlen(n->tname));
            xerr_at(x, n->line, n->col, n->src, "template %s not defined", q.p ? q.p : "");
            free(q.p);
            return F_ERR;
        }
        struct tval nd = {.k = V_NIL};
        if (n->pipe) {
            int mark = x->nvars;
            nd = eval_pipe(x, dot, n->pipe);
            x->nvars = mark;
            if (x->failed) return F_ERR;
        }
        if (++x->depth > TPL_MAX_DEPTH) {
            xerr(x, "exceeded maximum template depth (%d)", TPL_MAX_DEPTH);
            return F_ERR;
        }
        /* a new scope: only $ (the new dot) */
        int sn = x->nvars, sb = x->base;
        const char *oldname = x->cur_name;
        x->cur_name = n->tname;
        x->base = x->nvars;
        var_push(x, "$", nd);
        enum flow fl = exec_list(x, nd, body);
        x->cur_name = oldname;
        x->nvars = sn;
        x->base = sb;
        x->depth--;
        if (fl == F_ERR) return F_ERR;
        break;
    }
    case N_BREAK:
        return F_BREAK;
    case N_CONTINUE:
        return F_CONTINUE;
    }
    if (x->out.len > TPL_MAX_OUT) {
        xerr(x, "expanded template exceeds %u bytes", TPL_MAX_OUT);
        return F_ERR;
    }
    return x->failed ? F_ERR : F_NORMAL;
}

static enum flow exec_list(struct exec *x, struct tval dot, const struct node *list) {
    for (size_t i = 0; i < list->nkids; i++) {
        enum flow f = exec_node(x, dot, list->kids[i]);
        if (f != F_NORMAL) return f;
    }
    return F_NORMAL;
}

int template_expand(const struct template *t, const struct template_data *d, char **out) {
    *out = NULL;
    struct exec *x = calloc(1, sizeof(*x));
    if (!x) return -ENOMEM;
    x->t = t;
    x->d = d;
    x->cur_name = t->name;
    rbuf_init(&x->out);
    rbuf_init(&x->err);
    x->root_labels = labels_map(x, d->labels, d->nlabels);
    x->root_ext = labels_map(x, d->ext_labels, d->next_labels);
    int rc = 0;
    if (!x->root_labels || !x->root_ext) {
        rc = -ENOMEM;
        goto done;
    }
    struct tval root = {.k = V_ROOT};
    root.u.root = x;
    var_push(x, "$", root);
    exec_list(x, root, t->root);
    if (x->a.oom || x->out.oom || x->err.oom) {
        rc = -ENOMEM;
        goto done;
    }
    if (x->failed) {
        *out = rbuf_take(&x->err);
        rc = *out ? -EINVAL : -ENOMEM;
        goto done;
    }
    *out = rbuf_take(&x->out);
    if (!*out) rc = -ENOMEM;
done:
    rbuf_fini(&x->out);
    rbuf_fini(&x->err);
    arena_free(&x->a);
    free(x);
    return rc;
}

char *template_expand_text(const struct template *t, const struct template_data *d) {
    char *res = NULL;
    int rc = template_expand(t, d, &res);
    if (rc != -EINVAL) return res; /* text, or NULL on OOM */
    struct rbuf b;
    rbuf_init(&b);
    rbuf_printf(&b, "<error expanding template: error executing template %s: %s>", t->name, res);
    free(res);
    return rbuf_take(&b);
}

char *template_expand_alert(const char *name, const char *text, const struct template_data *d) {
    struct perr err = {0};
    struct template *t = template_parse(name, text, strlen(text), true, &err);
    if (!t) {
        if (strcmp(err.msg, "out of memory") == 0) return NULL;
        struct rbuf b;
        rbuf_init(&b);
        rbuf_printf(&b, "<error expanding template: error parsing template %s: %s>", name, err.msg);
        return rbuf_take(&b);
    }
    char *res = template_expand_text(t, d);
    template_free(t);
    return res;
}

int template_format_float(char *buf, size_t size, double v) {
    struct rbuf b;
    rbuf_init(&b);
    rbuf_gofloat(&b, v, 'g');
    int n = (int)b.len;
    if (size) snprintf(buf, size, "%s", b.p ? b.p : "");
    rbuf_fini(&b);
    return n;
}

int template_parse_duration(const char *s, int64_t *ms) {
    /* model.ParseDuration, the same grammar as PromQL durations. */
    return s && *s ? promql_parse_duration(s, ms) : -EINVAL;
}

int template_format_duration(char *buf, size_t size, int64_t ms) {
    /* model.Duration.String(): largest units first, "0s" for zero */
    struct rbuf b;
    rbuf_init(&b);
    if (ms == 0)
        rbuf_puts(&b, "0s");
    else {
        if (ms < 0) {
            rbuf_putc(&b, '-');
            ms = -ms;
        }
        static const struct {
            const char *u;
            int64_t ms;
        } units[] = {{"y", 365LL * 86400000},
                     {"w", 7LL * 86400000},
                     {"d", 86400000},
                     {"h", 3600000},
                     {"m", 60000},
                     {"s", 1000},
                     {"ms", 1}};
        for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
            int64_t q = ms / units[k].ms;
            if (q) {
                rbuf_printf(&b, "%" PRId64 "%s", q, units[k].u);
                ms -= q * units[k].ms;
            }
        }
    }
    int n = (int)b.len;
    if (size) snprintf(buf, size, "%s", b.p ? b.p : "");
    rbuf_fini(&b);
    return n;
}
