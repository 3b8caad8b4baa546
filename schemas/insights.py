"""The CloudTrail Insights events schema: records of ``CloudTrail-Insight/`` objects.

An Insights event marks the start or end of unusual API call or error rates. Its
record is not an API event: it has no ``userIdentity`` or request, but an
``insightDetails`` block. Fields follow AWS' "CloudTrail record contents for
Insights events for trails" (eventVersion 1.07 onward; ``eventCategory`` since
1.08). The stable members of ``insightDetails`` are typed; ``insightContext``
(statistics and attributions, whose members AWS reshapes and deprecates) is kept
as its exact JSON text. Anything else lands in ``unmapped``, as for API events.
The same derived columns and partitioning as the events table apply.
"""

from __future__ import annotations

from schemas.cloudtrail import JsonText, TableSchema, _read, _struct

INSIGHT_DETAILS = _struct(
    _read("state", doc="Start or End of the unusual activity."),
    _read("eventSource", doc="The service whose API showed unusual activity."),
    _read("eventName", doc="The API that showed unusual activity."),
    _read("insightType", doc="ApiCallRateInsight or ApiErrorRateInsight."),
    _read("errorCode", doc="The error code analysed (ApiErrorRateInsight only)."),
    _read(
        "insightContext",
        JsonText(),
        "Statistics (baseline, insight, durations) and attributions, as JSON text.",
    ),
)

INSIGHT_FIELDS = (
    _read("eventVersion"),
    _read("eventTime", doc="The original ISO-8601 text: when the activity started or ended."),
    _read("awsRegion"),
    _read("eventID"),
    _read("eventType", doc="Always AwsCloudTrailInsight."),
    _read("recipientAccountId"),
    _read("sharedEventID", doc="Common to the Start and End events of one Insight."),
    _read("insightDetails", INSIGHT_DETAILS),
    _read("eventCategory", doc="Always Insight (eventVersion 1.08 on)."),
)
"""The fields of an Insights event record, in column order."""

INSIGHTS = TableSchema("insights", INSIGHT_FIELDS)
"""The Insights events table: its own folder, same partitioning as the events table."""
