/* txtrec: strict syntax of the _mta-sts (RFC 8461 §3.1) and _smtp._tls (RFC 8460 §3) records */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "txtrec.h"

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* sts-ext-value / tlsrpt-ext-value: %x21-3A / %x3C / %x3E-7E */
static bool ext_value_char(char c)
{
	return (c >= 0x21 && c <= 0x3a) || c == 0x3c || (c >= 0x3e && c <= 0x7e);
}

static bool starts(const char *rec, const char *version)
{
	size_t n = strlen(version);

	return strncmp(rec, version, n) == 0 && (rec[n] == 0 || rec[n] == ';' || wsp(rec[n]));
}

bool txtrec_is_sts(const char *rec)
{
	return starts(rec, "v=STSv1");
}

bool txtrec_is_tlsrpt(const char *rec)
{
	return starts(rec, "v=TLSRPTv1");
}

/* One field after the version: calls back with name and value spans. The fields are
 * "name=value" separated by *WSP ";" *WSP, with at least one and an optional trailing
 * delimiter. Returns the number of fields, or -1 with err. */
typedef int field_fn(const char *name, size_t nlen, const char *value, size_t vlen, void *arg,
                     char *err, size_t err_size);

static int fields(const char *p, field_fn *fn, void *arg, char *err, size_t err_size)
{
	int n = 0;

	for (;;) {
		const char *name, *value;
		size_t nlen, vlen;

		while (wsp(*p))
			p++;
		if (*p == 0)
			break;
		if (*p != ';') {
			snprintf(err, err_size, "expected ';' at \"%.40s\"", p);
			return -1;
		}
		p++;
		while (wsp(*p))
			p++;
		if (*p == 0)
			break; /* the one trailing delimiter */
		name = p;
		if (!alnum(*p)) {
			snprintf(err, err_size, "bad field name at \"%.40s\"", p);
			return -1;
		}
		while (alnum(*p) || *p == '_' || *p == '-' || *p == '.')
			p++;
		nlen = (size_t)(p - name);
		if (nlen > 32 || *p != '=') {
			snprintf(err, err_size, "bad field at \"%.40s\"", name);
			return -1;
		}
		value = ++p;
		/* The rua value may hold "," with whitespace around it; its callback judges. */
		while (*p != 0 && *p != ';' && (ext_value_char(*p) || wsp(*p)))
			p++;
		vlen = (size_t)(p - value);
		while (vlen > 0 && wsp(value[vlen - 1]))
			vlen--;
		if (*p != 0 && *p != ';') {
			snprintf(err, err_size, "bad character 0x%02x in field %.*s",
			         (unsigned char)*p, (int)nlen, name);
			return -1;
		}
		if (vlen == 0) {
			snprintf(err, err_size, "empty value of %.*s", (int)nlen, name);
			return -1;
		}
		if (fn(name, nlen, value, vlen, arg, err, err_size) < 0)
			return -1;
		n++;
	}
	if (n == 0) {
		snprintf(err, err_size, "no field after the version");
		return -1;
	}
	return n;
}

static bool name_is(const char *name, size_t nlen, const char *want)
{
	return nlen == strlen(want) && memcmp(name, want, nlen) == 0;
}

struct sts {
	char id[POLICY_ID_MAX + 1];
	bool seen;
};

static int sts_field(const char *name, size_t nlen, const char *value, size_t vlen, void *arg,
                     char *err, size_t err_size)
{
	struct sts *s = arg;

	if (!name_is(name, nlen, "id")) {
		for (size_t i = 0; i < vlen; i++)
			if (!ext_value_char(value[i])) {
				snprintf(err, err_size, "whitespace in the value of %.*s",
				         (int)nlen, name);
				return -1;
			}
		return 0;
	}
	if (s->seen) {
		snprintf(err, err_size, "more than one id field");
		return -1;
	}
	if (vlen > POLICY_ID_MAX) {
		snprintf(err, err_size, "id longer than %d characters", POLICY_ID_MAX);
		return -1;
	}
	for (size_t i = 0; i < vlen; i++)
		if (!alnum(value[i])) {
			snprintf(err, err_size,
			         "id \"%.*s\" has other characters than letters and "
			         "digits",
			         (int)vlen, value);
			return -1;
		}
	memcpy(s->id, value, vlen);
	s->id[vlen] = 0;
	s->seen = true;
	return 0;
}

int txtrec_sts(const char *rec, char ret_id[POLICY_ID_MAX + 1], char *err, size_t err_size)
{
	struct sts s = {.seen = false};

	if (!txtrec_is_sts(rec)) {
		snprintf(err, err_size, "does not start with v=STSv1");
		return -1;
	}
	if (fields(rec + 7, sts_field, &s, err, err_size) < 0)
		return -1;
	if (!s.seen) {
		snprintf(err, err_size, "no id field");
		return -1;
	}
	memcpy(ret_id, s.id, strlen(s.id) + 1);
	return 0;
}

static int uri_ok(const char *u, size_t len, char *err, size_t err_size)
{
	size_t skip = 0;

	if (len > 7 && strncasecmp(u, "mailto:", 7) == 0)
		skip = 7;
	else if (len > 8 && strncasecmp(u, "https://", 8) == 0)
		skip = 8;
	if (skip == 0) {
		snprintf(err, err_size, "rua URI \"%.*s\" is neither mailto: nor https:", (int)len,
		         u);
		return -1;
	}
	for (size_t i = skip; i < len; i++)
		if (!ext_value_char(u[i]) || u[i] == ',') {
			snprintf(err, err_size, "bad character in rua URI \"%.*s\"", (int)len, u);
			return -1;
		}
	return 0;
}

static int tlsrpt_field(const char *name, size_t nlen, const char *value, size_t vlen, void *arg,
                        char *err, size_t err_size)
{
	bool *seen = arg;
	size_t i = 0;

	if (!name_is(name, nlen, "rua")) {
		for (size_t k = 0; k < vlen; k++)
			if (!ext_value_char(value[k])) {
				snprintf(err, err_size, "whitespace in the value of %.*s",
				         (int)nlen, name);
				return -1;
			}
		return 0;
	}
	if (*seen) {
		snprintf(err, err_size, "more than one rua field");
		return -1;
	}
	*seen = true;
	while (i < vlen) {
		size_t start = i, end;

		while (i < vlen && value[i] != ',' && !wsp(value[i]))
			i++;
		end = i;
		if (end == start) {
			snprintf(err, err_size, "empty URI in rua");
			return -1;
		}
		if (uri_ok(value + start, end - start, err, err_size) < 0)
			return -1;
		while (i < vlen && wsp(value[i]))
			i++;
		if (i < vlen) {
			if (value[i] != ',') {
				snprintf(err, err_size, "whitespace inside a rua URI");
				return -1;
			}
			i++;
			while (i < vlen && wsp(value[i]))
				i++;
			if (i == vlen) {
				snprintf(err, err_size, "rua ends with ','");
				return -1;
			}
		}
	}
	return 0;
}

int txtrec_tlsrpt(const char *rec, char *err, size_t err_size)
{
	bool seen = false;

	if (!txtrec_is_tlsrpt(rec)) {
		snprintf(err, err_size, "does not start with v=TLSRPTv1");
		return -1;
	}
	if (fields(rec + 10, tlsrpt_field, &seen, err, err_size) < 0)
		return -1;
	if (!seen) {
		snprintf(err, err_size, "no rua field");
		return -1;
	}
	return 0;
}
