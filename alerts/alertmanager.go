package alerts

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// alertmanagerMessage is the body of Alertmanager's webhook notification
// (version 4), so that anything that receives Alertmanager webhooks —
// chat bridges, incident tools — receives chute's too. Each message
// carries one alert: the group is (alertname, queue).
type alertmanagerMessage struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            Status              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []alertmanagerAlert `json:"alerts"`
}

type alertmanagerAlert struct {
	Status       Status            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero while firing, as Alertmanager sends it
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

func newAlertmanagerMessage(a Alert, receiver, externalURL string) alertmanagerMessage {
	labels := map[string]string{"alertname": a.Rule, "severity": string(a.Severity)}
	group := map[string]string{"alertname": a.Rule}
	if a.Queue != "" {
		labels["queue"] = a.Queue
		group["queue"] = a.Queue
	}
	annotations := map[string]string{
		"summary":   a.Summary,
		"value":     a.Figure.format(a.Value),
		"threshold": a.Figure.format(a.Threshold),
	}
	var ends time.Time
	if a.Status == StatusResolved {
		ends = a.Resolved.UTC()
	}
	return alertmanagerMessage{
		Version:           "4",
		GroupKey:          "{}:" + labelString(group),
		Status:            a.Status,
		Receiver:          receiver,
		GroupLabels:       group,
		CommonLabels:      labels,
		CommonAnnotations: annotations,
		ExternalURL:       externalURL,
		Alerts: []alertmanagerAlert{{
			Status:       a.Status,
			Labels:       labels,
			Annotations:  annotations,
			StartsAt:     a.Started.UTC(),
			EndsAt:       ends,
			GeneratorURL: externalURL,
			Fingerprint:  fingerprint(labels),
		}},
	}
}

// labelString writes labels as Prometheus prints a label set:
// {a="1", b="2"}, sorted by name.
func labelString(labels map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range sortedKeys(labels) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// fingerprint is Prometheus's label-set fingerprint (FNV-1a 64 over the
// sorted names and values, each followed by 0xff), as Alertmanager
// reports it.
func fingerprint(labels map[string]string) string {
	h := fnv.New64a()
	for _, k := range sortedKeys(labels) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}
