"""The readers' policy of `stedi deploy aws`: what analysts and data scientists querying through Athena may do.

Readers query through the stedi workgroup only, read the Glue database `stedi` and the tables they may see,
read those tables' files (data and metadata, under s3://B/P/warehouse/stedi/<table>/) and Athena's results
(under s3://B/P/athena-results/, which Athena writes with the reader's own credentials). The tables they may
see are the curated zone's, and the trusted zone's when the stack's `ReadersSeeTrusted` is "true"; never the
landing zone (landed files and the landing, quarantine and failures tables: raw records), the audit tables
(runs and checks, nothing a question of the data needs), the privacy folder (suppression list, erasure
receipts) or the pseudonym key, which explicit Deny statements also refuse whatever else a reader's role
is given. Which zone a table is in comes from stedi.tables.

Athena's results are one folder for everyone who queries through the workgroup: a reader can read what
another querier of the workgroup asked, so whoever may read more than readers should query elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stedi.config import NAMESPACE
from stedi.deploy.parameters import TRUSTED_FOR_READERS, if_, secrets_named_so, sub
from stedi.iceberg.warehouse import table_folder
from stedi.storage.files import LANDING, PRIVACY
from stedi.tables import TABLES

if TYPE_CHECKING:
    from stedi.deploy.deployment import Deployment

CURATED = [t.name for t in TABLES.values() if t.zone == "curated"]
TRUSTED = [t.name for t in TABLES.values() if t.zone == "trusted"]
LANDING_TABLES = [t.name for t in TABLES.values() if t.zone == "landing"]  # landing, quarantine, failures
WORKGROUP_NAME = "stedi"  # the Athena workgroup readers query through
ATHENA_RESULTS = "athena-results"  # its results, under the root

# Queries of the stedi workgroup: run, follow, stop, read the results (of any query in the workgroup)
ATHENA_QUERY_ACTIONS = [
    "athena:GetWorkGroup", "athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
    "athena:BatchGetQueryExecution", "athena:ListQueryExecutions", "athena:GetQueryResults",
    "athena:GetQueryResultsStream", "athena:GetQueryRuntimeStatistics"]
# Athena's view of the Glue Data Catalog (the console's database and table lists); Glue's own permissions
# below still decide what is seen
ATHENA_CATALOG_ACTIONS = ["athena:GetDataCatalog", "athena:ListDatabases", "athena:GetDatabase",
                          "athena:ListTableMetadata", "athena:GetTableMetadata"]
GLUE_READ_ACTIONS = ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
                     "glue:GetPartition", "glue:GetPartitions"]
# Athena writes a query's results, and reads them back, with the caller's credentials
RESULT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]



def _by_zone(make: Callable[[list[str]], Any]) -> dict[str, Any]:
    """`make` of the tables readers see: the curated ones, and the trusted ones too when the stack says so."""
    return if_(TRUSTED_FOR_READERS, make(CURATED + TRUSTED), make(CURATED))


def readers_policy(d: Deployment) -> dict[str, Any]:
    """The readers' managed policy (its document, with the template's intrinsic functions)."""
    athena, glue = (f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}"
                    for service in ("athena", "glue"))
    bucket = f"arn:${{AWS::Partition}}:s3:::{d.bucket}"
    under = f"{bucket}/{d.key_prefix}"

    def table_files(names: list[str]) -> list[dict[str, str]]:
        return [sub(f"{under}{table_folder(t)}/*") for t in names]

    def catalog(names: list[str]) -> list[dict[str, str]]:
        return [sub(f"{glue}:catalog"), sub(f"{glue}:database/{NAMESPACE}"),
                *(sub(f"{glue}:table/{NAMESPACE}/{t}") for t in names)]

    def listing(names: list[str]) -> list[str]:
        folders = [*(f"{d.key_prefix}{table_folder(t)}" for t in names), f"{d.key_prefix}{ATHENA_RESULTS}"]
        return [pattern for folder in folders for pattern in (folder, f"{folder}/*")]

    never = [f"{d.key_prefix}{LANDING}", f"{d.key_prefix}{PRIVACY}",
             *(f"{d.key_prefix}{table_folder(t)}" for t in LANDING_TABLES)]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "QueriesThroughTheStediWorkgroup", "Effect": "Allow", "Action": ATHENA_QUERY_ACTIONS,
             "Resource": sub(f"{athena}:workgroup/{WORKGROUP_NAME}")},
            {"Sid": "TheDataCatalogThroughAthena", "Effect": "Allow", "Action": ATHENA_CATALOG_ACTIONS,
             "Resource": sub(f"{athena}:datacatalog/AwsDataCatalog")},
            {"Sid": "TheTablesReadersSee", "Effect": "Allow", "Action": GLUE_READ_ACTIONS,
             "Resource": _by_zone(catalog)},
            {"Sid": "TheirFiles", "Effect": "Allow", "Action": "s3:GetObject", "Resource": _by_zone(table_files)},
            {"Sid": "AthenasResults", "Effect": "Allow", "Action": RESULT_ACTIONS,
             "Resource": sub(f"{under}{ATHENA_RESULTS}/*")},
            {"Sid": "ListingTheirFoldersOnly", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": sub(bucket),
             "Condition": {"StringLike": {"s3:prefix": _by_zone(listing)}}},
            {"Sid": "TheBucketsRegion", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": sub(bucket)},
            # defence in depth: refused even when a reader's role is given more by another policy
            {"Sid": "NeverLandedDataOrPrivacy", "Effect": "Deny", "Action": "s3:*",
             "Resource": [sub(f"{bucket}/{folder}/*") for folder in never]},
            {"Sid": "NeverListingThem", "Effect": "Deny", "Action": "s3:ListBucket", "Resource": sub(bucket),
             "Condition": {"StringLike": {"s3:prefix": [f"{folder}*" for folder in never]}}},
            {"Sid": "NeverThePseudonymKey", "Effect": "Deny", "Action": "secretsmanager:*",
             "Resource": secrets_named_so()},
        ],
    }
