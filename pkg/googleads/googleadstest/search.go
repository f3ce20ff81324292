package googleadstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// gaqlError is a GAQL parse error: Google's queryError code and message.
type gaqlError struct{ code, message string }

func (e *gaqlError) Error() string { return e.code + ": " + e.message }

// query is the part of GAQL the fake runs: SELECT fields FROM
// conversion_action [WHERE cond [AND cond]...] [ORDER BY field [ASC|DESC]]
// [LIMIT n], with conditions field = | != | IN | NOT IN on strings, numbers
// and enum constants.
type query struct {
	fields []string
	conds  []cond
	order  string
	desc   bool
	limit  int
}

type cond struct {
	field  string
	op     string // =, !=, IN, NOT IN
	values []string
}

// actionFields are the conversion_action fields the fake knows, with their
// JSON names.
var actionFields = map[string]string{
	"conversion_action.resource_name": "resourceName",
	"conversion_action.id":            "id",
	"conversion_action.name":          "name",
	"conversion_action.status":        "status",
	"conversion_action.type":          "type",
	"conversion_action.category":      "category",
}

type token struct {
	kind string // ident, string, number, symbol
	text string
}

// lex splits GAQL into tokens. Strings are quoted with ' or "; inside them a
// backslash escapes \, ' and " only.
func lex(q string) ([]token, error) {
	var toks []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(q) {
					return nil, &gaqlError{"STRING_NOT_TERMINATED", "A string literal was not terminated."}
				}
				ch := q[j]
				if ch == c {
					break
				}
				if ch == '\n' || ch == '\r' {
					return nil, &gaqlError{"PROHIBITED_NEWLINE_IN_STRING", "A string literal contains a newline."}
				}
				if ch == '\\' {
					j++
					if j >= len(q) {
						return nil, &gaqlError{"STRING_NOT_TERMINATED", "A string literal was not terminated."}
					}
					switch q[j] {
					case '\\', '\'', '"':
						b.WriteByte(q[j])
					default:
						return nil, &gaqlError{"BAD_ESCAPE_SEQUENCE", fmt.Sprintf("Invalid escape sequence \\%c.", q[j])}
					}
					continue
				}
				b.WriteByte(ch)
			}
			toks = append(toks, token{"string", b.String()})
			i = j + 1
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			toks = append(toks, token{"number", q[i:j]})
			i = j
		case c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z'):
			j := i
			for j < len(q) && (q[j] == '_' || q[j] == '.' || (q[j]|0x20 >= 'a' && q[j]|0x20 <= 'z') || (q[j] >= '0' && q[j] <= '9')) {
				j++
			}
			toks = append(toks, token{"ident", q[i:j]})
			i = j
		case c == '!' && i+1 < len(q) && q[i+1] == '=':
			toks = append(toks, token{"symbol", "!="})
			i += 2
		case c == '=' || c == ',' || c == '(' || c == ')':
			toks = append(toks, token{"symbol", string(c)})
			i++
		default:
			return nil, &gaqlError{"BAD_SYMBOL", fmt.Sprintf("Unexpected symbol '%c'.", c)}
		}
	}
	return toks, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *parser) next() (token, error) {
	t, ok := p.peek()
	if !ok {
		return t, &gaqlError{"UNEXPECTED_END_OF_QUERY", "The query ended unexpectedly."}
	}
	p.pos++
	return t, nil
}

func (p *parser) keyword(word string) bool {
	t, ok := p.peek()
	if ok && t.kind == "ident" && strings.EqualFold(t.text, word) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) field() (string, error) {
	t, err := p.next()
	if err != nil {
		return "", err
	}
	if t.kind != "ident" {
		return "", &gaqlError{"BAD_FIELD_NAME", fmt.Sprintf("Expected a field name, got '%s'.", t.text)}
	}
	if _, ok := actionFields[t.text]; !ok {
		return "", &gaqlError{"UNRECOGNIZED_FIELD", fmt.Sprintf("Unrecognized field in the query: '%s'.", t.text)}
	}
	return t.text, nil
}

func (p *parser) value() (string, error) {
	t, err := p.next()
	if err != nil {
		return "", err
	}
	if t.kind == "symbol" {
		return "", &gaqlError{"BAD_VALUE", fmt.Sprintf("Expected a value, got '%s'.", t.text)}
	}
	return t.text, nil
}

func parseQuery(q string) (*query, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	out := &query{limit: -1}
	if !p.keyword("SELECT") {
		return nil, &gaqlError{"EXPECTED_SELECT", "Expected SELECT."}
	}
	for {
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		out.fields = append(out.fields, f)
		if t, ok := p.peek(); ok && t.text == "," {
			p.pos++
			continue
		}
		break
	}
	if !p.keyword("FROM") {
		return nil, &gaqlError{"EXPECTED_FROM", "Expected FROM."}
	}
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	if t.text != "conversion_action" {
		return nil, &gaqlError{"BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", fmt.Sprintf("The fake knows only conversion_action, not '%s'.", t.text)}
	}
	if p.keyword("WHERE") {
		for {
			var c cond
			if c.field, err = p.field(); err != nil {
				return nil, err
			}
			switch {
			case p.keyword("NOT"):
				if !p.keyword("IN") {
					return nil, &gaqlError{"BAD_OPERATOR", "Expected IN after NOT."}
				}
				c.op = "NOT IN"
			case p.keyword("IN"):
				c.op = "IN"
			default:
				op, err := p.next()
				if err != nil {
					return nil, err
				}
				if op.text != "=" && op.text != "!=" {
					return nil, &gaqlError{"BAD_OPERATOR", fmt.Sprintf("Invalid operator '%s'.", op.text)}
				}
				c.op = op.text
			}
			if c.op == "IN" || c.op == "NOT IN" {
				if t, err := p.next(); err != nil || t.text != "(" {
					return nil, &gaqlError{"EXPECTED_LIST", "Expected a list of values."}
				}
				for {
					v, err := p.value()
					if err != nil {
						return nil, err
					}
					c.values = append(c.values, v)
					t, err := p.next()
					if err != nil {
						return nil, err
					}
					if t.text == ")" {
						break
					}
					if t.text != "," {
						return nil, &gaqlError{"UNEXPECTED_INPUT", fmt.Sprintf("Unexpected '%s' in a list.", t.text)}
					}
				}
			} else {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				c.values = []string{v}
			}
			out.conds = append(out.conds, c)
			if !p.keyword("AND") {
				break
			}
		}
	}
	if p.keyword("ORDER") {
		if !p.keyword("BY") {
			return nil, &gaqlError{"EXPECTED_BY", "Expected BY after ORDER."}
		}
		if out.order, err = p.field(); err != nil {
			return nil, err
		}
		if p.keyword("DESC") {
			out.desc = true
		} else {
			p.keyword("ASC")
		}
	}
	if p.keyword("LIMIT") {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(t.text)
		if t.kind != "number" || err != nil || n <= 0 {
			return nil, &gaqlError{"BAD_LIMIT_VALUE", fmt.Sprintf("Invalid LIMIT '%s'.", t.text)}
		}
		out.limit = n
	}
	if t, ok := p.peek(); ok {
		return nil, &gaqlError{"UNEXPECTED_INPUT", fmt.Sprintf("Unexpected input '%s'.", t.text)}
	}
	return out, nil
}

func fieldValue(a *ConversionAction, field string) string {
	switch field {
	case "conversion_action.resource_name":
		return a.ResourceName()
	case "conversion_action.id":
		return strconv.FormatInt(a.ID, 10)
	case "conversion_action.name":
		return a.Name
	case "conversion_action.status":
		return a.Status
	case "conversion_action.type":
		return a.Type
	case "conversion_action.category":
		return a.Category
	}
	return ""
}

func (c cond) match(a *ConversionAction) bool {
	in := slices.Contains(c.values, fieldValue(a, c.field))
	if c.op == "!=" || c.op == "NOT IN" {
		return !in
	}
	return in
}

func (s *Server) serveSearch(w http.ResponseWriter, customer string, body []byte) {
	var req struct {
		Query                   string `json:"query"`
		PageToken               string `json:"pageToken,omitempty"`
		ValidateOnly            bool   `json:"validateOnly,omitempty"`
		ReturnTotalResultsCount bool   `json:"returnTotalResultsCount,omitempty"`
		SummaryRowSetting       string `json:"summaryRowSetting,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeBadRequest(w, "", "Invalid JSON payload received. "+err.Error())
		return
	}
	if strings.TrimSpace(req.Query) == "" {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.",
			[]failureError{{ErrorCode: map[string]string{"queryError": "QUERY_ERROR"}, Message: "The query is empty."}})
		return
	}
	q, err := parseQuery(req.Query)
	if err != nil {
		ge := err.(*gaqlError)
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.",
			[]failureError{{ErrorCode: map[string]string{"queryError": ge.code}, Message: ge.message}})
		return
	}
	s.mu.Lock()
	var rows []*ConversionAction
	for _, a := range s.actions {
		if a.CustomerID != customer {
			continue
		}
		ok := true
		for _, c := range q.conds {
			ok = ok && c.match(a)
		}
		if ok {
			cp := *a
			rows = append(rows, &cp)
		}
	}
	s.mu.Unlock()
	order := q.order
	if order == "" {
		order = "conversion_action.id"
	}
	slices.SortFunc(rows, func(x, y *ConversionAction) int {
		var c int
		if order == "conversion_action.id" {
			c = int(x.ID - y.ID)
		} else {
			c = strings.Compare(fieldValue(x, order), fieldValue(y, order))
		}
		if q.desc {
			c = -c
		}
		return c
	})
	if q.limit > 0 && len(rows) > q.limit {
		rows = rows[:q.limit]
	}
	mask := make([]string, len(q.fields))
	for i, f := range q.fields {
		mask[i] = "conversionAction." + actionFields[f]
	}
	resp := map[string]any{"fieldMask": strings.Join(mask, ",")}
	if len(rows) > 0 {
		results := make([]map[string]any, len(rows))
		for i, a := range rows {
			// The resource name always comes back, selected or not.
			obj := map[string]string{"resourceName": a.ResourceName()}
			for _, f := range q.fields {
				obj[actionFields[f]] = fieldValue(a, f)
			}
			results[i] = map[string]any{"conversionAction": obj}
		}
		resp["results"] = results
	}
	writeJSON(w, http.StatusOK, resp)
}
