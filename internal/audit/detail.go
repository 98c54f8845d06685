package audit

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"

	"strings"
)

// Detail marshals v for Record.Detail. A value that cannot be marshalled
// (a function, a channel, a NaN, a cycle) never takes the others with it:
// v is walked (maps, slices, arrays, structs, pointers) and only the parts
// that fail are replaced, each by {"unencodable_detail": why, "type": T}
// (a float that is not a number by its text, e.g. "NaN"). Every other
// value of the record is kept as json.Marshal would write it.
func Detail(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err == nil {
		return b
	}
	b, err = json.Marshal(encodable(reflect.ValueOf(v), 0))
	if err != nil { // cannot happen: encodable returns only encodable values
		b, _ = json.Marshal(map[string]string{"unencodable_detail": err.Error()})
	}
	return b
}

// maxDetailDepth bounds the walk (a cycle through pointers or maps).
const maxDetailDepth = 32

// encodable returns a value json.Marshal accepts, equal to v where v is
// encodable and naming the failure where it is not.
func encodable(v reflect.Value, depth int) any {
	if !v.IsValid() {
		return nil
	}
	if v.CanInterface() {
		if b, err := json.Marshal(v.Interface()); err == nil {
			return json.RawMessage(b)
		} else if depth >= maxDetailDepth {
			return unencodable(v, err)
		} else if isMarshaler(v) {
			return unencodable(v, err)
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return encodable(v.Elem(), depth+1)
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		keys := v.MapKeys()
		for _, k := range keys {
			out[mapKey(k)] = encodable(v.MapIndex(k), depth+1)
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = encodable(v.Index(i), depth+1)
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := v.Field(i)
			if strings.Contains(opts, "omitempty") && fv.IsZero() {
				continue
			}
			out[name] = encodable(fv, depth+1)
		}
		return out
	case reflect.Float32, reflect.Float64:
		return fmt.Sprint(v.Float()) // NaN, +Inf, -Inf
	}
	_, err := json.Marshal(reflect.Zero(v.Type()).Interface())
	if err == nil {
		err = fmt.Errorf("json: unsupported value of type %s", v.Type())
	}
	return unencodable(v, err)
}

func isMarshaler(v reflect.Value) bool {
	_, j := v.Interface().(json.Marshaler)
	_, t := v.Interface().(encoding.TextMarshaler)
	return j || t
}

func unencodable(v reflect.Value, err error) map[string]string {
	return map[string]string{"unencodable_detail": err.Error(), "type": v.Type().String()}
}

// mapKey writes a map key as encoding/json would (strings, integers,
// TextMarshalers), and anything else as its printed value.
func mapKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	if k.CanInterface() {
		if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
			if b, err := tm.MarshalText(); err == nil {
				return string(b)
			}
		}
		return fmt.Sprint(k.Interface())
	}
	return k.String()
}
