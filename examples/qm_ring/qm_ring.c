/*
 * qm_ring: the HiSilicon QM ring protocol in C, as warpspec's `qm` machine sees it, speaking
 * warpspec's `drive` protocol (JSON lines on stdin/stdout; see README.md, "Checking your
 * implementation").
 *
 * What is implemented: the queue-pair allocator, the mailbox busy bit, every queue pair's
 * SQ and CQ as rings of `depth` slots in memory, the device-wide EQ, doorbells, the device
 * (consume an SQE, write the CQE and EQE with the phase bit of the device's current lap), the
 * kernel send path (hisi_qp_send) and IRQ thread (qm_irq_thread), and the user driver
 * (hisi_qm_add_to_dio_q, hisi_qm_get_from_dio_q). Consumers never read the device's tail:
 * they accept the entry at their head while its phase bit is the one they expect, and flip
 * the expectation when their head wraps. A queue pair holds at most depth - 1 requests.
 *
 * Ring positions are kept as absolute counters (the slot is counter % depth) so that the
 * state can be reported in the spec's shape after every command.
 *
 * Build: cc -O2 -o qm_ring qm_ring.c -lm
 * Run:   qm_ring [--bug no-phase-flip | --bug full-ring]
 *   --bug no-phase-flip  the user driver's poll never flips its expected phase when its CQ
 *                        head wraps, so after one lap it stops seeing completions
 *   --bug full-ring      the send paths allow depth requests outstanding instead of depth - 1
 *                        (the full/empty ambiguity the reserved slot exists to avoid)
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- a small JSON reader */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct {
	int type;
	double num; /* J_NUM, and J_BOOL as 0/1 */
	char *str;  /* J_STR: NUL-terminated, unescaped in place */
	char *key;  /* the key of an object member */
	int child;  /* first member or item, -1 if none */
	int next;   /* next sibling, -1 if none */
} jnode;

#define MAX_NODES 4096
static jnode nodes[MAX_NODES];
static int nnodes;
static const char *jerr;

static char *skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* Parses a string at p (at the opening quote) in place; returns past the closing quote. */
static char *parse_str(char *p, char **out)
{
	char *w = ++p;
	*out = w;
	while (*p && *p != '"') {
		if (*p == '\\') {
			p++;
			switch (*p) {
			case 'n': *w++ = '\n'; break;
			case 't': *w++ = '\t'; break;
			case 'r': *w++ = '\r'; break;
			case 'b': *w++ = '\b'; break;
			case 'f': *w++ = '\f'; break;
			case 'u':
				/* only ASCII matters here: keep a placeholder for anything else */
				if (!p[1] || !p[2] || !p[3] || !p[4]) {
					jerr = "bad \\u escape";
					return NULL;
				}
				*w++ = '?';
				p += 4;
				break;
			case '\0': jerr = "unterminated string"; return NULL;
			default: *w++ = *p;
			}
			p++;
		} else {
			*w++ = *p++;
		}
	}
	if (*p != '"') {
		jerr = "unterminated string";
		return NULL;
	}
	*w = '\0';
	return p + 1;
}

static char *parse_value(char *p, int *out);

static int new_node(int type)
{
	if (nnodes == MAX_NODES) {
		jerr = "request too large";
		return -1;
	}
	jnode *n = &nodes[nnodes];
	n->type = type;
	n->num = 0;
	n->str = n->key = NULL;
	n->child = n->next = -1;
	return nnodes++;
}

static char *parse_container(char *p, int idx, int obj)
{
	char close = obj ? '}' : ']';
	int last = -1;
	p = skip_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		char *key = NULL;
		if (obj) {
			if (*p != '"') {
				jerr = "expected a key";
				return NULL;
			}
			if (!(p = parse_str(p, &key)))
				return NULL;
			p = skip_ws(p);
			if (*p != ':') {
				jerr = "expected ':'";
				return NULL;
			}
			p = skip_ws(p + 1);
		}
		int item;
		if (!(p = parse_value(p, &item)))
			return NULL;
		nodes[item].key = key;
		if (last < 0)
			nodes[idx].child = item;
		else
			nodes[last].next = item;
		last = item;
		p = skip_ws(p);
		if (*p == ',') {
			p = skip_ws(p + 1);
			continue;
		}
		if (*p == close)
			return p + 1;
		jerr = obj ? "expected ',' or '}'" : "expected ',' or ']'";
		return NULL;
	}
}

static char *parse_value(char *p, int *out)
{
	p = skip_ws(p);
	int idx;
	if (*p == '{' || *p == '[') {
		if ((idx = new_node(*p == '{' ? J_OBJ : J_ARR)) < 0)
			return NULL;
		*out = idx;
		return parse_container(p, idx, *p == '{');
	}
	if (*p == '"') {
		if ((idx = new_node(J_STR)) < 0)
			return NULL;
		*out = idx;
		return parse_str(p, &nodes[idx].str);
	}
	if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
		if ((idx = new_node(J_BOOL)) < 0)
			return NULL;
		nodes[idx].num = *p == 't';
		*out = idx;
		return p + (*p == 't' ? 4 : 5);
	}
	if (!strncmp(p, "null", 4)) {
		if ((idx = new_node(J_NULL)) < 0)
			return NULL;
		*out = idx;
		return p + 4;
	}
	char *end;
	double v = strtod(p, &end);
	if (end == p) {
		jerr = "unexpected character";
		return NULL;
	}
	if ((idx = new_node(J_NUM)) < 0)
		return NULL;
	nodes[idx].num = v;
	*out = idx;
	return end;
}

/* The member `key` of object node `obj`, or -1. */
static int get(int obj, const char *key)
{
	if (obj < 0 || nodes[obj].type != J_OBJ)
		return -1;
	for (int c = nodes[obj].child; c >= 0; c = nodes[c].next)
		if (!strcmp(nodes[c].key, key))
			return c;
	return -1;
}

/* ---------------------------------------------------------------- output */

/* A growing text buffer. */
typedef struct {
	char *p;
	size_t len, cap;
} buf_t;

static buf_t out;          /* answers not yet written */
static buf_t retb, evb;    /* the current command's ret and events, as JSON text */

static void vbput(buf_t *b, const char *fmt, va_list ap)
{
	for (;;) {
		va_list aq;
		va_copy(aq, ap);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, aq);
		va_end(aq);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += n;
			return;
		}
		b->cap = b->cap * 2 + (n > 0 ? n : 0) + 256;
		if (!(b->p = realloc(b->p, b->cap))) {
			perror("qm_ring: realloc");
			exit(1);
		}
	}
}

static void bput(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vbput(b, fmt, ap);
	va_end(ap);
}

#define put(...) bput(&out, __VA_ARGS__)

static void flush_out(void)
{
	size_t off = 0;
	while (off < out.len) {
		ssize_t n = write(1, out.p + off, out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("qm_ring: write");
			exit(1);
		}
		off += n;
	}
	out.len = 0;
}

/* ---------------------------------------------------------------- the QM */

typedef struct {
	long long seq, tag;
	int status, has_status; /* written back by the device */
} sqe_t;

typedef struct {
	long sq_index;
	int phase;
} cqe_t;

typedef struct {
	long cqn;
	int phase;
} eqe_t;

typedef struct {
	int kernel;     /* owned by the kernel, else by process `pid` */
	long long pid;
} owner_t;

typedef struct {
	int allocated, started;
	owner_t owner;
	sqe_t *sq; /* sq_depth slots, once started */
	cqe_t *cq; /* cq_depth slots, zeroed at start */
	long long sq_tail, sq_db, sq_head, cq_tail, cq_head, cq_db;
	int dev_cq_phase; /* the device's CQ lap phase */
	int phase;        /* the consumer's expected phase */
	long long last_completed, wakeups;
} qp_t;

static struct {
	long qp_num, sq_depth, cq_depth, eq_depth;
	qp_t *qps;
	eqe_t *eq;
	long long eq_tail, eq_head, eq_db;
	int dev_eq_phase, eq_phase;
	int irq_masked, irq_pending, mailbox_busy;
} qm;

static int ready;
static int bug_no_phase_flip, bug_full_ring;

static int is_int(double v)
{
	return isfinite(v) && v == floor(v);
}

static int is_u16(double v)
{
	return is_int(v) && v >= 0 && v <= 0xffff;
}

static int is_safe_int(double v)
{
	return is_int(v) && fabs(v) <= 9007199254740991.0;
}

static int owner_valid(owner_t o)
{
	return o.kernel || o.pid > 0;
}

static int same_owner(owner_t a, owner_t b)
{
	return a.kernel == b.kernel && (a.kernel || a.pid == b.pid);
}

/* Distance from position `from` forward to slot `index` of a ring of `depth` slots. */
static long long forward(long long from, long long index, long depth)
{
	return ((index - from % depth) % depth + depth) % depth;
}

static void free_qp(qp_t *qp)
{
	free(qp->sq);
	free(qp->cq);
	memset(qp, 0, sizeof(*qp));
}

static const char *reset(int cfg)
{
	const char *names[] = {"qpNum", "sqDepth", "cqDepth", "eqDepth"};
	long v[4];
	for (int i = 0; i < 4; i++) {
		int n = get(cfg, names[i]);
		if (n < 0 || nodes[n].type != J_NUM || !is_int(nodes[n].num))
			return "config needs integer qpNum, sqDepth, cqDepth and eqDepth";
		v[i] = (long)nodes[n].num;
		if (v[i] < (i ? 2 : 1) || v[i] > 0x10000)
			return "config size out of range";
	}
	if (qm.qps) {
		for (long i = 0; i < qm.qp_num; i++)
			free_qp(&qm.qps[i]);
		free(qm.qps);
		free(qm.eq);
	}
	memset(&qm, 0, sizeof(qm));
	qm.qp_num = v[0];
	qm.sq_depth = v[1];
	qm.cq_depth = v[2];
	qm.eq_depth = v[3];
	qm.qps = calloc(qm.qp_num, sizeof(qp_t));
	qm.eq = calloc(qm.eq_depth, sizeof(eqe_t));
	if (!qm.qps || !qm.eq)
		return "out of memory";
	qm.dev_eq_phase = qm.eq_phase = 1;
	ready = 1;
	return NULL;
}

static void set_ret(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	retb.len = 0;
	vbput(&retb, fmt, ap);
	va_end(ap);
}

static void add_ret(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vbput(&retb, fmt, ap);
	va_end(ap);
}

static void fail(const char *errno_name)
{
	set_ret("{\"err\":\"%s\"}", errno_name);
}

/* The queue pair `qn` names, or NULL with the errno set (EINVAL bad number, ENOENT free). */
static qp_t *lookup(double qn)
{
	if (!is_int(qn) || qn < 0 || qn >= qm.qp_num) {
		fail("EINVAL");
		return NULL;
	}
	qp_t *qp = &qm.qps[(long)qn];
	if (!qp->allocated) {
		fail("ENOENT");
		return NULL;
	}
	return qp;
}

static void op_alloc(owner_t owner)
{
	if (!owner_valid(owner))
		return fail("EINVAL");
	for (long i = 0; i < qm.qp_num; i++) {
		if (!qm.qps[i].allocated) {
			qm.qps[i].allocated = 1;
			qm.qps[i].owner = owner;
			qm.qps[i].phase = qm.qps[i].dev_cq_phase = 1;
			qm.qps[i].last_completed = -1;
			set_ret("{\"ok\":%ld}", i);
			return;
		}
	}
	fail("EBUSY");
}

/* hisi_qm_start_qp: fresh zeroed rings, expected phase 1. */
static void op_start(double qn)
{
	qp_t *qp = lookup(qn);
	if (!qp)
		return;
	if (qp->started)
		return fail("EINVAL");
	if (qm.mailbox_busy)
		return fail("EBUSY");
	owner_t owner = qp->owner;
	free_qp(qp);
	qp->allocated = qp->started = 1;
	qp->owner = owner;
	qp->sq = calloc(qm.sq_depth, sizeof(sqe_t));
	qp->cq = calloc(qm.cq_depth, sizeof(cqe_t));
	qp->phase = qp->dev_cq_phase = 1;
	qp->last_completed = -1;
	set_ret("{\"ok\":%ld}", (long)qn);
}

static void op_release(double qn)
{
	qp_t *qp = lookup(qn);
	if (!qp)
		return;
	long long dropped = qp->sq_tail - qp->cq_head;
	free_qp(qp);
	set_ret("{\"ok\":{\"dropped\":%lld}}", dropped);
}

/* hisi_qp_send / hisi_qm_add_to_dio_q: write the SQE at the tail, ring the SQ doorbell. */
static void op_submit(double qn, owner_t by, double tag, int ring, const char *full)
{
	qp_t *qp = lookup(qn);
	if (!qp)
		return;
	if (!same_owner(qp->owner, by))
		return fail("EPERM");
	if (!qp->started || !is_safe_int(tag))
		return fail("EINVAL");
	long limit = bug_full_ring ? qm.sq_depth : qm.sq_depth - 1;
	if (qp->sq_tail - qp->cq_head >= limit)
		return fail(full);
	sqe_t *sqe = &qp->sq[qp->sq_tail % qm.sq_depth];
	sqe->seq = qp->sq_tail;
	sqe->tag = (long long)tag;
	sqe->has_status = 0;
	qp->sq_tail++;
	if (ring)
		qp->sq_db = qp->sq_tail;
	set_ret("{\"ok\":%lld}", sqe->seq);
}

static void op_doorbell(owner_t by, double qn, double cmd, double index, double priority)
{
	if (!owner_valid(by) || !is_u16(qn) || !is_u16(index) || !is_u16(priority))
		return fail("EINVAL");
	long long idx = (long long)index;
	if (cmd == 2) { /* EQ: released up to index */
		if (!by.kernel)
			return fail("EPERM");
		long long head = qm.eq_db + forward(qm.eq_db, idx, qm.eq_depth);
		if (head > qm.eq_head)
			return fail("EINVAL");
		qm.eq_db = head;
		return set_ret("{\"ok\":null}");
	}
	if (cmd == 3) /* AEQ: not modelled */
		return by.kernel ? set_ret("{\"ok\":null}") : fail("EPERM");
	if (cmd != 0 && cmd != 1)
		return fail("EINVAL");
	qp_t *qp = lookup(qn);
	if (!qp)
		return;
	if (!same_owner(qp->owner, by))
		return fail("EPERM");
	if (!qp->started)
		return fail("EINVAL");
	if (cmd == 0) { /* SQ: the tail is now at index */
		long long tail = qp->sq_db + forward(qp->sq_db, idx, qm.sq_depth);
		if (tail > qp->sq_tail)
			return fail("EINVAL");
		qp->sq_db = tail;
	} else { /* CQ: released up to index */
		long long head = qp->cq_db + forward(qp->cq_db, idx, qm.cq_depth);
		if (head > qp->cq_head)
			return fail("EINVAL");
		qp->cq_db = head;
	}
	set_ret("{\"ok\":null}");
}

/* Writes one EQE at the EQ tail and raises the interrupt unless masked. */
static void write_eqe(long cqn)
{
	eqe_t *e = &qm.eq[qm.eq_tail % qm.eq_depth];
	e->cqn = cqn;
	e->phase = qm.dev_eq_phase;
	if (++qm.eq_tail % qm.eq_depth == 0)
		qm.dev_eq_phase ^= 1;
	if (!qm.irq_masked)
		qm.irq_pending = 1;
}

/* The device: consume the SQE at its head, write the CQE and the EQE. */
static void op_device_step(double qn, double status)
{
	qp_t *qp = lookup(qn);
	if (!qp)
		return;
	if (!qp->started || !is_int(status) || status < 0 || status > 0xff)
		return fail("EINVAL");
	if (qp->sq_head == qp->sq_db)
		return fail("EAGAIN");
	if (qp->cq_tail - qp->cq_db >= qm.cq_depth - 1 || qm.eq_tail - qm.eq_db >= qm.eq_depth - 1)
		return fail("EBUSY");
	long sq_index = qp->sq_head % qm.sq_depth;
	sqe_t *sqe = &qp->sq[sq_index];
	sqe->status = (int)status;
	sqe->has_status = 1;
	qp->sq_head++;
	long cq_index = qp->cq_tail % qm.cq_depth;
	cqe_t *cqe = &qp->cq[cq_index];
	cqe->sq_index = sq_index;
	cqe->phase = qp->dev_cq_phase;
	if (++qp->cq_tail % qm.cq_depth == 0)
		qp->dev_cq_phase ^= 1;
	write_eqe((long)qn);
	set_ret("{\"ok\":{\"sqIndex\":%ld,\"cqIndex\":%ld,\"phase\":%d}}", sq_index, cq_index,
		cqe->phase);
}

/*
 * Accepts CQEs at the consumer's head while their phase is the expected one (at most
 * `limit`), appending each completion to the ret (after a comma when `comma`), then rings the
 * CQ doorbell. Returns how many.
 */
static long drain_cq(qp_t *qp, long qn, long limit, int flip, int comma)
{
	long n = 0;
	while (n < limit) {
		cqe_t *cqe = &qp->cq[qp->cq_head % qm.cq_depth];
		if (cqe->phase != qp->phase)
			break;
		sqe_t *sqe = &qp->sq[cqe->sq_index];
		add_ret("%s{\"qn\":%ld,\"seq\":%lld,\"tag\":%lld,\"status\":%d}",
			n || comma ? "," : "", qn,
			sqe->seq, sqe->tag, sqe->has_status ? sqe->status : 0);
		qp->last_completed = sqe->seq;
		if (++qp->cq_head % qm.cq_depth == 0 && flip)
			qp->phase ^= 1;
		n++;
	}
	if (n)
		qp->cq_db = qp->cq_head;
	return n;
}

/* hisi_qm_get_from_dio_q: one completion of a user queue. */
static void op_poll(double qn, owner_t by)
{
	qp_t *qp = lookup(qn);
	if (!qp)
		return;
	if (!same_owner(qp->owner, by))
		return fail("EPERM");
	if (!qp->started)
		return fail("EINVAL");
	set_ret("{\"ok\":");
	if (!drain_cq(qp, (long)qn, 1, !bug_no_phase_flip, 0))
		return fail("EAGAIN");
	add_ret("}");
}

/* qm_irq_thread: walk the EQ while the phase matches. */
static void op_irq(void)
{
	if (!qm.irq_pending)
		return fail("EAGAIN");
	buf_t woken = {0};
	bput(&woken, "");
	long long start = qm.eq_head;
	long completions = 0;
	set_ret("{\"ok\":{\"completions\":[");
	for (;;) {
		eqe_t *e = &qm.eq[qm.eq_head % qm.eq_depth];
		if (e->phase != qm.eq_phase)
			break;
		if (e->cqn >= qm.qp_num) {
			bput(&evb, "%s{\"warn\":\"eqe-cqn-out-of-range\",\"cqn\":%ld}",
			     evb.len ? "," : "", e->cqn);
		} else {
			qp_t *qp = &qm.qps[e->cqn];
			if (qp->allocated && qp->started && qp->owner.kernel) {
				completions += drain_cq(qp, e->cqn, 1L << 30, 1, completions > 0);
			} else if (qp->allocated && qp->started) {
				qp->wakeups++;
				bput(&woken, "%s%ld", woken.len ? "," : "", e->cqn);
			}
		}
		if (++qm.eq_head % qm.eq_depth == 0)
			qm.eq_phase ^= 1;
	}
	qm.eq_db = qm.eq_head;
	qm.irq_pending = 0;
	add_ret("],\"eqes\":%lld,\"woken\":[%.*s]}}", qm.eq_head - start, (int)woken.len,
		woken.p);
	free(woken.p);
}

static void op_set_irq_mask(int masked)
{
	qm.irq_masked = masked;
	qm.irq_pending = masked ? 0 : (qm.irq_pending || qm.eq_head < qm.eq_tail);
	set_ret("{\"ok\":null}");
}

static void op_mailbox(double cmd, double queue)
{
	if (!(cmd == 0 || cmd == 1 || cmd == 2 || cmd == 4 || cmd == 5) || !is_u16(queue))
		return fail("EINVAL");
	if (qm.mailbox_busy)
		return fail("EBUSY");
	qm.mailbox_busy = 1;
	set_ret("{\"ok\":null}");
}

static void op_mailbox_done(void)
{
	if (!qm.mailbox_busy)
		return fail("EAGAIN");
	qm.mailbox_busy = 0;
	set_ret("{\"ok\":null}");
}

static void op_device_bad_eqe(double cqn)
{
	if (!is_u16(cqn))
		return fail("EINVAL");
	if (qm.eq_tail - qm.eq_db >= qm.eq_depth - 1)
		return fail("EBUSY");
	write_eqe((long)cqn);
	set_ret("{\"ok\":null}");
}

/* ---------------------------------------------------------------- the state, spec-shaped */

static void put_owner(owner_t o)
{
	if (o.kernel)
		put("\"kernel\"");
	else
		put("%lld", o.pid);
}

static void put_state(void)
{
	put("{\"config\":{\"qpNum\":%ld,\"sqDepth\":%ld,\"cqDepth\":%ld,\"eqDepth\":%ld},\"qps\":[",
	    qm.qp_num, qm.sq_depth, qm.cq_depth, qm.eq_depth);
	for (long i = 0; i < qm.qp_num; i++) {
		qp_t *qp = &qm.qps[i];
		if (i)
			put(",");
		if (!qp->allocated) {
			put("null");
			continue;
		}
		put("{\"state\":\"%s\",\"qn\":%ld,\"owner\":", qp->started ? "started" : "created",
		    i);
		put_owner(qp->owner);
		if (!qp->started) {
			put("}");
			continue;
		}
		put(",\"sqTail\":%lld,\"sqDoorbell\":%lld,\"sqHead\":%lld,"
		    "\"cqTail\":%lld,\"cqHead\":%lld,\"cqDoorbell\":%lld,\"phase\":%d,\"sq\":[",
		    qp->sq_tail, qp->sq_db, qp->sq_head, qp->cq_tail, qp->cq_head, qp->cq_db, qp->phase);
		for (long long p = qp->cq_head; p < qp->sq_tail; p++) {
			sqe_t *s = &qp->sq[p % qm.sq_depth];
			put("%s{\"seq\":%lld,\"tag\":%lld,\"status\":", p > qp->cq_head ? "," : "", s->seq,
			    s->tag);
			if (s->has_status)
				put("%d}", s->status);
			else
				put("null}");
		}
		put("],\"cq\":[");
		for (long long p = qp->cq_db; p < qp->cq_tail; p++) {
			cqe_t *c = &qp->cq[p % qm.cq_depth];
			put("%s{\"sqIndex\":%ld,\"phase\":%d}", p > qp->cq_db ? "," : "", c->sq_index,
			    c->phase);
		}
		put("],\"lastCompleted\":%lld,\"wakeups\":%lld,\"foreignDoorbells\":0}",
		    qp->last_completed, qp->wakeups);
	}
	put("],\"eqTail\":%lld,\"eqHead\":%lld,\"eqDoorbell\":%lld,\"eqPhase\":%d,\"eq\":[",
	    qm.eq_tail, qm.eq_head, qm.eq_db, qm.eq_phase);
	for (long long p = qm.eq_db; p < qm.eq_tail; p++) {
		eqe_t *e = &qm.eq[p % qm.eq_depth];
		put("%s{\"cqn\":%ld,\"phase\":%d}", p > qm.eq_db ? "," : "", e->cqn, e->phase);
	}
	long long buffers = 5; /* probe: EQ context, EQ, SQC and CQC tables, mailbox read-back */
	for (long i = 0; i < qm.qp_num; i++)
		buffers += qm.qps[i].started;
	put("],\"irqMasked\":%s,\"irqPending\":%s,\"mailboxBusy\":%s,\"dmaBuffers\":%lld}",
	    qm.irq_masked ? "true" : "false", qm.irq_pending ? "true" : "false",
	    qm.mailbox_busy ? "true" : "false", buffers);
}

/* ---------------------------------------------------------------- requests */

static void answer_error(const char *msg)
{
	put("{\"error\":\"%s\"}\n", msg);
}

/* Reads a numeric argument; absent gives `dflt`, a non-number NAN (every check fails). */
static double num(int cmd, const char *key, double dflt)
{
	int n = get(cmd, key);
	if (n < 0)
		return dflt;
	return nodes[n].type == J_NUM ? nodes[n].num : NAN;
}

/* Reads a boolean argument; absent gives `dflt`, anything else -1. */
static int flag(int cmd, const char *key, int dflt)
{
	int n = get(cmd, key);
	if (n < 0)
		return dflt;
	return nodes[n].type == J_BOOL ? (int)nodes[n].num : -1;
}

/* Reads an owner argument: "kernel" or a pid (anything else is an invalid owner). */
static owner_t owner_arg(int cmd, const char *key)
{
	owner_t o = {0, 0};
	int n = get(cmd, key);
	if (n >= 0 && nodes[n].type == J_STR && !strcmp(nodes[n].str, "kernel"))
		o.kernel = 1;
	else if (n >= 0 && nodes[n].type == J_NUM && is_safe_int(nodes[n].num))
		o.pid = (long long)nodes[n].num;
	return o;
}

static owner_t pid_arg(int cmd, const char *key)
{
	owner_t o = {0, 0};
	double v = num(cmd, key, NAN);
	o.pid = is_safe_int(v) ? (long long)v : 0;
	return o;
}

static const owner_t KERNEL = {1, 0};

static void apply(int cmd)
{
	int opn = get(cmd, "op");
	if (opn < 0 || nodes[opn].type != J_STR)
		return answer_error("the command has no op");
	const char *op = nodes[opn].str;
	retb.len = evb.len = 0;
	if (!strcmp(op, "qm.alloc"))
		op_alloc(owner_arg(cmd, "owner"));
	else if (!strcmp(op, "qm.start"))
		op_start(num(cmd, "qn", NAN));
	else if (!strcmp(op, "qm.release"))
		op_release(num(cmd, "qn", NAN));
	else if (!strcmp(op, "qm.send"))
		op_submit(num(cmd, "qn", NAN), KERNEL, num(cmd, "tag", NAN), 1, "ENOSPC");
	else if (!strcmp(op, "qm.userSend")) {
		int ring = flag(cmd, "ring", 1);
		if (ring < 0)
			fail("EINVAL");
		else
			op_submit(num(cmd, "qn", NAN), pid_arg(cmd, "by"), num(cmd, "tag", NAN), ring,
				  "EBUSY");
	} else if (!strcmp(op, "qm.doorbell"))
		op_doorbell(owner_arg(cmd, "by"), num(cmd, "qn", NAN), num(cmd, "cmd", NAN),
			    num(cmd, "index", NAN), num(cmd, "priority", NAN));
	else if (!strcmp(op, "qm.deviceStep"))
		op_device_step(num(cmd, "qn", NAN), num(cmd, "status", 0));
	else if (!strcmp(op, "qm.poll"))
		op_poll(num(cmd, "qn", NAN), pid_arg(cmd, "by"));
	else if (!strcmp(op, "qm.irq"))
		op_irq();
	else if (!strcmp(op, "qm.setIrqMask")) {
		int masked = flag(cmd, "masked", -1);
		if (masked < 0)
			fail("EINVAL");
		else
			op_set_irq_mask(masked);
	} else if (!strcmp(op, "qm.mailbox"))
		op_mailbox(num(cmd, "cmd", NAN), num(cmd, "queue", NAN));
	else if (!strcmp(op, "qm.mailboxDone"))
		op_mailbox_done();
	else if (!strcmp(op, "qm.deviceBadEqe"))
		op_device_bad_eqe(num(cmd, "cqn", NAN));
	else
		return answer_error("unknown op");
	put("{\"ret\":%.*s,\"events\":[%.*s],\"state\":", (int)retb.len, retb.p, (int)evb.len,
	    evb.p);
	put_state();
	put("}\n");
}

static void handle(char *line)
{
	nnodes = 0;
	jerr = NULL;
	int root;
	char *end = parse_value(line, &root);
	if (!end || *skip_ws(end) || nodes[root].type != J_OBJ)
		return answer_error(jerr ? jerr : "the request is not one JSON object");
	int type = get(root, "type");
	if (type < 0 || nodes[type].type != J_STR)
		return answer_error("the request has no type");
	if (!strcmp(nodes[type].str, "reset")) {
		const char *why = reset(get(root, "config"));
		if (why)
			return answer_error(why);
		put("{\"ready\":true,\"state\":");
		put_state();
		put("}\n");
	} else if (!strcmp(nodes[type].str, "apply")) {
		if (!ready)
			return answer_error("apply before reset");
		apply(get(root, "command"));
	} else {
		answer_error("unknown request type");
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--bug") && i + 1 < argc && !strcmp(argv[i + 1], "no-phase-flip"))
			bug_no_phase_flip = 1;
		else if (!strcmp(argv[i], "--bug") && i + 1 < argc && !strcmp(argv[i + 1], "full-ring"))
			bug_full_ring = 1;
		else {
			fprintf(stderr, "usage: %s [--bug no-phase-flip | --bug full-ring]\n", argv[0]);
			return 2;
		}
		i++;
	}
	bput(&retb, "");
	bput(&evb, "");
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		char *nl;
		size_t start = 0;
		while ((nl = memchr(buf + start, '\n', len - start))) {
			*nl = '\0';
			handle(buf + start);
			start = nl - buf + 1;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
		flush_out(); /* no complete request left: answer before waiting for more */
		if (len + 1 >= cap && !(buf = realloc(buf, cap *= 2))) {
			perror("qm_ring: realloc");
			return 1;
		}
		ssize_t n = read(0, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		len += n;
	}
}
