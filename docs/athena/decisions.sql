-- csp-mail-filter: the decisions exported by `mailfilter trace --export s3://BUCKET/PREFIX`, for Amazon Athena.
-- One gzipped JSON Lines object per UTC day and exported window, under PREFIX/dt=YYYY-MM-DD/.
-- Replace BUCKET/PREFIX; partitions are projected from the dt= folders, so no MSCK REPAIR is needed.
-- Exporting the same window again replaces its objects; overlapping windows repeat records, so
-- count distinct (message_id, sk) or export whole days once (e.g. daily: --since 2025-01-14 --until 2025-01-15).
CREATE EXTERNAL TABLE IF NOT EXISTS mailfilter_decisions (
  message_id     string,
  sk             string,   -- <kind>#<recipient>: with message_id, the record's key
  kind           string,   -- decision, violation, deferred, rejected, released
  direction      string,
  cloud          string,
  `at`           string,   -- ISO 8601 UTC, e.g. 2025-01-14T09:30:00.000000Z
  expires_at     bigint,   -- when DynamoDB's TTL removes the record from the table
  mode           string,
  sender         string,   -- outbound: the sending identity (the request's from)
  subject        string,   -- outbound: the subject as classified, at most 200 characters
  recipient      string,
  action         string,
  effective      string,
  deliver_to     array<string>,
  rule           string,
  seed_rule      int,
  reason         string,
  error          string,   -- deferred and rejected records
  category       string,
  product        string,
  customer       string,
  customer_name  string,
  matched_by     string,
  partners       array<string>,
  segment        string,
  authenticated  boolean,
  classification struct<
    category: string, category_source: string, product: string, product_source: string,
    products: array<string>, cloud: string, cloud_source: string,
    evidence: array<struct<kind: string, value: string, source: string>>
  >,
  customer_view  struct<
    cloud: string, tenant_id: string, name: string, direct_relationship: boolean,
    direct_products: array<string>, matched_by: string, entry: string,
    partners: array<struct<partner_id: string, name: string, products: array<string>, contacts: array<string>>>
  >
)
PARTITIONED BY (dt string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'false')
LOCATION 's3://BUCKET/PREFIX/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2024-01-01,NOW',
  'storage.location.template' = 's3://BUCKET/PREFIX/dt=${dt}/'
);

-- What did Contoso receive last quarter, and why?
-- SELECT "at", recipient, effective, rule, reason FROM mailfilter_decisions
--  WHERE customer_name = 'Contoso' AND dt BETWEEN '2025-01-01' AND '2025-03-31' ORDER BY "at";
