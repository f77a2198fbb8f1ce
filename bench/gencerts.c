/* gencerts - generate (and cache) the bench CA and one P-256 leaf per domain. */
/*
 * Usage: gencerts [-j JOBS] DIR N
 *
 * Writes, under DIR (created if missing):
 *   ca/root.crt ca/root.key ca/int.crt ca/int.key   one root + one intermediate
 *   certs/SSS/mta-sts.dNNNNNNN.bench.example.crt    leaf + intermediate (fullchain)
 *   keys/SSS/mta-sts.dNNNNNNN.bench.example.key     PKCS#8 P-256 key, mode 0600
 *   manifest-N.tsv                                  one line per domain
 * for the domains d0000001 .. dN (7 digits at least), SSS = (NNNNNNN - 1) / 10000:
 * 10,000 domains per directory, so that a server configured for N domains only
 * finds about N files in its certificate directories (mtastsd lists them).
 *
 * Files that already exist are kept (the CA too), so a second run for the same
 * or a smaller N is instant and a run for a larger N only creates the missing
 * domains.  Every file is written to a temporary name and renamed into place,
 * so an interrupted run never leaves a truncated file behind.  JOBS worker
 * processes (default: one per online CPU) split the domains by index.
 *
 * Manifest line (tab separated):
 *   domain  host  cert_path  key_path  body
 * where body is the expected policy with CR and LF written as the two-character
 * escapes \r and \n.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DOMAIN_SUFFIX "bench.example"
#define MAX_AGE 1209600
#define VALID_DAYS 3650

static const char *g_dir;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("gencerts: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* snprintf that dies instead of truncating */
static void fmt(char *dst, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(dst, size, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		die("path too long");
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_size > 0;
}

static void mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	fmt(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			die("mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		die("mkdir %s: %s", tmp, strerror(errno));
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static EVP_PKEY_CTX *g_kctx;

static EVP_PKEY *gen_key(void)
{
	EVP_PKEY *k = NULL;

	if (!g_kctx) {
		g_kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (!g_kctx || EVP_PKEY_keygen_init(g_kctx) <= 0 ||
		    EVP_PKEY_CTX_set_group_name(g_kctx, "P-256") <= 0)
			die("EC keygen init");
	}
	if (EVP_PKEY_keygen(g_kctx, &k) <= 0)
		die("EC keygen");
	return k;
}

static void add_ext(X509 *issuer, X509 *subj, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, subj, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext || !X509_add_ext(subj, ext, -1))
		die("extension %d=%s", nid, value);
	X509_EXTENSION_free(ext);
}

/* issuer == NULL: self-signed */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial, X509 *issuer,
                       EVP_PKEY *issuer_key, int ca, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (!x)
		die("X509_new");
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400L) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400L * VALID_DAYS) ||
	    !X509_set_pubkey(x, key))
		die("cert fields");
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	                                (const unsigned char *)"mtastsd bench", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                                0))
		die("subject");
	if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
		die("issuer");
	if (ca) {
		add_ext(issuer ? issuer : x, x, NID_basic_constraints,
		        issuer ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE");
		add_ext(issuer ? issuer : x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(issuer ? issuer : x, x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(issuer, x, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(issuer, x, NID_key_usage, "critical,digitalSignature");
		add_ext(issuer, x, NID_ext_key_usage, "serverAuth");
		add_ext(issuer, x, NID_subject_alt_name, san);
	}
	if (issuer)
		add_ext(issuer, x, NID_authority_key_identifier, "keyid:always");
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
		die("sign %s", cn);
	return x;
}

/* write the BIO's contents to path via a temporary file + rename */
static void write_atomic(const char *path, BIO *mem)
{
	char tmp[PATH_MAX];
	char *data;
	long len;
	FILE *f;

	fmt(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	len = BIO_get_mem_data(mem, &data);
	f = fopen(tmp, "w");
	if (!f)
		die("open %s: %s", tmp, strerror(errno));
	if (fwrite(data, 1, (size_t)len, f) != (size_t)len || fclose(f) != 0)
		die("write %s: %s", tmp, strerror(errno));
	if (rename(tmp, path) != 0)
		die("rename %s: %s", tmp, strerror(errno));
}

static BIO *mem_bio(void)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (!b)
		die("BIO_new");
	return b;
}

static void save_key(const char *path, EVP_PKEY *k, mode_t mode)
{
	BIO *b = mem_bio();

	if (!PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		die("PEM key");
	write_atomic(path, b);
	if (chmod(path, mode) != 0)
		die("chmod %s: %s", path, strerror(errno));
	BIO_free(b);
}

static void save_cert(const char *path, X509 *x, const char *append)
{
	BIO *b = mem_bio();

	if (!PEM_write_bio_X509(b, x))
		die("PEM cert");
	if (append && BIO_puts(b, append) <= 0)
		die("BIO_puts");
	write_atomic(path, b);
	BIO_free(b);
}

static X509 *load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (!f)
		die("open %s: %s", path, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		die("read %s", path);
	return x;
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (!f)
		die("open %s: %s", path, strerror(errno));
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		die("read %s", path);
	return k;
}

/* create ca/ if missing; return the intermediate's cert, key and PEM text */
static void setup_ca(X509 **int_crt, EVP_PKEY **int_key, char **int_pem)
{
	char rc[PATH_MAX], rk[PATH_MAX], ic[PATH_MAX], ik[PATH_MAX], d[PATH_MAX];
	BIO *b;
	char *data;
	long len;

	fmt(d, sizeof(d), "%s/ca", g_dir);
	mkdir_p(d);
	fmt(rc, sizeof(rc), "%s/root.crt", d);
	fmt(rk, sizeof(rk), "%s/root.key", d);
	fmt(ic, sizeof(ic), "%s/int.crt", d);
	fmt(ik, sizeof(ik), "%s/int.key", d);
	if (!exists(ic) || !exists(ik) || !exists(rc) || !exists(rk)) {
		EVP_PKEY *rkey = gen_key(), *ikey = gen_key();
		X509 *root = make_cert(rkey, "mtastsd bench root", 1, NULL, NULL, 1, NULL);
		X509 *in = make_cert(ikey, "mtastsd bench intermediate", 2, root, rkey, 1, NULL);

		save_key(rk, rkey, 0600);
		save_cert(rc, root, NULL);
		save_key(ik, ikey, 0600);
		save_cert(ic, in, NULL);
		X509_free(root);
		X509_free(in);
		EVP_PKEY_free(rkey);
		EVP_PKEY_free(ikey);
		fprintf(stderr, "gencerts: new CA in %s\n", d);
	}
	*int_crt = load_cert(ic);
	*int_key = load_key(ik);
	b = mem_bio();
	if (!PEM_write_bio_X509(b, *int_crt))
		die("PEM int");
	len = BIO_get_mem_data(b, &data);
	*int_pem = malloc((size_t)len + 1);
	if (!*int_pem)
		die("out of memory");
	memcpy(*int_pem, data, (size_t)len);
	(*int_pem)[len] = '\0';
	BIO_free(b);
}

/* domains per subdirectory: a run for N domains only sees ~N files */
#define SHARD 10000

static void paths(unsigned long i, char *host, size_t hsz, char *crt, char *key, size_t psz)
{
	fmt(host, hsz, "mta-sts.d%07lu." DOMAIN_SUFFIX, i);
	fmt(crt, psz, "%s/certs/%03lu/%s.crt", g_dir, (i - 1) / SHARD, host);
	fmt(key, psz, "%s/keys/%03lu/%s.key", g_dir, (i - 1) / SHARD, host);
}

/* the cache layout before shards: certs/HOST.crt, keys/HOST.key; move them */
static void migrate_flat(const char *host, const char *crt, const char *key)
{
	char oc[PATH_MAX], ok[PATH_MAX];

	fmt(oc, sizeof(oc), "%s/certs/%s.crt", g_dir, host);
	fmt(ok, sizeof(ok), "%s/keys/%s.key", g_dir, host);
	if (exists(oc) && exists(ok) && !exists(crt)) {
		if (rename(ok, key) != 0 || rename(oc, crt) != 0)
			die("rename %s: %s", oc, strerror(errno));
	}
}

/* servers warn about keys readable by others */
static void key_private(const char *key)
{
	struct stat st;

	if (stat(key, &st) == 0 && (st.st_mode & 077) != 0 && chmod(key, 0600) != 0)
		die("chmod %s: %s", key, strerror(errno));
}

static unsigned long worker(unsigned long n, unsigned long jobs, unsigned long w, X509 *int_crt,
                            EVP_PKEY *int_key, const char *int_pem)
{
	char host[128], crt[PATH_MAX], key[PATH_MAX], san[160];
	unsigned long i, made = 0;

	for (i = 1 + w; i <= n; i += jobs) {
		EVP_PKEY *k;
		X509 *x;

		paths(i, host, sizeof(host), crt, key, sizeof(crt));
		migrate_flat(host, crt, key);
		if (exists(crt) && exists(key)) {
			key_private(key);
			continue;
		}
		fmt(san, sizeof(san), "DNS:%s", host);
		k = gen_key();
		x = make_cert(k, host, (long)(i + 1000), int_crt, int_key, 0, san);
		save_key(key, k, 0600);
		save_cert(crt, x, int_pem);
		X509_free(x);
		EVP_PKEY_free(k);
		made++;
	}
	return made;
}

static void write_manifest(unsigned long n)
{
	char path[PATH_MAX], tmp[PATH_MAX], host[128], crt[PATH_MAX], key[PATH_MAX];
	unsigned long i;
	FILE *f;

	fmt(path, sizeof(path), "%s/manifest-%lu.tsv", g_dir, n);
	fmt(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (!f)
		die("open %s: %s", tmp, strerror(errno));
	for (i = 1; i <= n; i++) {
		paths(i, host, sizeof(host), crt, key, sizeof(crt));
		if (fprintf(f,
		            "d%07lu." DOMAIN_SUFFIX "\t%s\t%s\t%s\t"
		            "version: STSv1\\r\\nmode: enforce\\r\\n"
		            "mx: mx1.d%07lu." DOMAIN_SUFFIX "\\r\\n"
		            "max_age: %d\\r\\n\n",
		            i, host, crt, key, i, MAX_AGE) < 0)
			die("write %s", tmp);
	}
	if (fclose(f) != 0)
		die("write %s: %s", tmp, strerror(errno));
	if (rename(tmp, path) != 0)
		die("rename %s: %s", tmp, strerror(errno));
	printf("%s\n", path);
}

static void usage(FILE *out)
{
	fputs("usage: gencerts [-j JOBS] DIR N\n"
	      "  Generate (cached) bench CA + P-256 leaf certs for domains\n"
	      "  d0000001..dN." DOMAIN_SUFFIX " under DIR and write DIR/manifest-N.tsv\n"
	      "  (printed on stdout).  JOBS: worker processes, default = CPUs.\n",
	      out);
}

int main(int argc, char **argv)
{
	unsigned long n, jobs, w, made = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	X509 *int_crt;
	EVP_PKEY *int_key;
	char *int_pem, d[PATH_MAX];
	struct timespec t0, t1;
	int opt, failed = 0, lockfd;

	jobs = ncpu > 0 ? (unsigned long)ncpu : 1;
	while ((opt = getopt(argc, argv, "hj:")) != -1) {
		switch (opt) {
		case 'j':
			if (parse_ulong(optarg, 256, &jobs) || jobs == 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || parse_ulong(argv[optind + 1], 9999999, &n) || n == 0) {
		usage(stderr);
		return 2;
	}
	g_dir = argv[optind];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	mkdir_p(g_dir);
	/* one generator per directory at a time (two would race on the CA) */
	fmt(d, sizeof(d), "%s/.lock", g_dir);
	lockfd = open(d, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0)
		die("lock %s: %s", d, strerror(errno));
	fmt(d, sizeof(d), "%s/certs", g_dir);
	mkdir_p(d);
	fmt(d, sizeof(d), "%s/keys", g_dir);
	mkdir_p(d);
	for (w = 0; w <= (n - 1) / SHARD; w++) {
		fmt(d, sizeof(d), "%s/certs/%03lu", g_dir, w);
		mkdir_p(d);
		fmt(d, sizeof(d), "%s/keys/%03lu", g_dir, w);
		mkdir_p(d);
	}
	setup_ca(&int_crt, &int_key, &int_pem);
	if (jobs > n)
		jobs = n;

	{
		pid_t pids[256];
		int pfd[256];

		for (w = 0; w < jobs; w++) {
			int fds[2];

			if (pipe(fds) != 0)
				die("pipe: %s", strerror(errno));
			pids[w] = fork();
			if (pids[w] < 0)
				die("fork: %s", strerror(errno));
			if (pids[w] == 0) {
				unsigned long m;

				close(fds[0]);
				m = worker(n, jobs, w, int_crt, int_key, int_pem);
				if (write(fds[1], &m, sizeof(m)) != (ssize_t)sizeof(m))
					_exit(1);
				_exit(0);
			}
			close(fds[1]);
			pfd[w] = fds[0];
		}
		for (w = 0; w < jobs; w++) {
			unsigned long m = 0;
			int st;

			if (read(pfd[w], &m, sizeof(m)) == (ssize_t)sizeof(m))
				made += m;
			close(pfd[w]);
			if (waitpid(pids[w], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				failed = 1;
		}
	}
	if (failed)
		die("a worker failed");
	write_manifest(n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "gencerts: %lu domains, %lu new, %.1f s, %lu jobs\n", n, made,
	        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, jobs);
	X509_free(int_crt);
	EVP_PKEY_free(int_key);
	free(int_pem);
	close(lockfd);
	return 0;
}
