//! Reading the table a page at a time: a query's pages or items one after another, every item
//! of a partition (of the table or of an index), and the listings the admin API pages through
//! with an opaque cursor.

use super::*;

/// A query's pages, one after another. (A loop of its own rather than the SDK's paginator: the
/// paginator's stream machinery cost each Lambda bootstrap about 23 KB.)
pub(super) struct Pages {
    query: QueryFluentBuilder,
    start: Option<Item>,
    done: bool,
}

impl Pages {
    pub(super) fn of(query: QueryFluentBuilder) -> Self {
        Self {
            query,
            start: None,
            done: false,
        }
    }

    /// The next page, or `None` after the last.
    pub(super) async fn next(&mut self) -> StoreResult<Option<QueryOutput>> {
        if self.done {
            return Ok(None);
        }
        let mut output = self
            .query
            .clone()
            .set_exclusive_start_key(self.start.take())
            .send()
            .await
            .map_err(backend)?;
        self.start = output.last_evaluated_key.take();
        self.done = self.start.is_none();
        Ok(Some(output))
    }
}

/// A query's pages handed to `take` until it answers `false` or the query is done.
pub(super) async fn each_page(
    query: QueryFluentBuilder,
    mut take: impl FnMut(QueryOutput) -> StoreResult<bool>,
) -> StoreResult<()> {
    let mut pages = Pages::of(query);
    while let Some(page) = pages.next().await? {
        if !take(page)? {
            break;
        }
    }
    Ok(())
}

/// The items a query finds, page after page, handed to `take` until it answers `false` or the
/// query is done.
pub(super) async fn each_item(
    query: QueryFluentBuilder,
    mut take: impl FnMut(Item) -> StoreResult<bool>,
) -> StoreResult<()> {
    each_page(query, |page| {
        for item in page.items.unwrap_or_default() {
            if !take(item)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await
}

/// One listing: a partition of the table or of an index, read forwards or backwards.
pub(super) struct Listing {
    pub(super) index: Option<&'static str>,
    pub(super) partition: String,
    /// Only sort keys (the index's, for an index listing) that begin with this.
    pub(super) sort_prefix: Option<String>,
    pub(super) forward: bool,
    pub(super) filter: Option<(&'static str, AttributeValue)>,
}

impl Listing {
    pub(super) fn table(partition: String, forward: bool) -> Self {
        Self {
            index: None,
            partition,
            sort_prefix: None,
            forward,
            filter: None,
        }
    }

    /// A partition's items whose sort key starts with `prefix`, highest key first.
    pub(super) fn table_prefix(partition: String, prefix: &'static str) -> Self {
        Self {
            sort_prefix: Some(prefix.to_owned()),
            ..Self::table(partition, false)
        }
    }

    pub(super) fn index(index: &'static str, partition: String, forward: bool) -> Self {
        Self {
            index: Some(index),
            partition,
            sort_prefix: None,
            forward,
            filter: None,
        }
    }

    /// The attributes that make up a position in this listing.
    pub(super) fn key_attributes(&self) -> Vec<String> {
        let mut keys = vec!["pk".to_owned(), "sk".to_owned()];
        if let Some(index) = self.index {
            keys.push(format!("{index}pk"));
            keys.push(format!("{index}sk"));
        }
        keys
    }

    pub(super) fn sort_attribute(&self) -> String {
        self.index
            .map_or_else(|| "sk".to_owned(), |index| format!("{index}sk"))
    }

    pub(super) fn partition_attribute(&self) -> String {
        self.index
            .map_or_else(|| "pk".to_owned(), |index| format!("{index}pk"))
    }
}

pub(super) struct ItemPage {
    pub(super) items: Vec<Item>,
    pub(super) cursor: Option<String>,
}

pub(super) fn encode_cursor(item: &Item, listing: &Listing) -> StoreResult<String> {
    let mut position = serde_json::Map::new();
    for key in listing.key_attributes() {
        position.insert(
            key.clone(),
            serde_json::Value::String(get_s(item, &key)?.to_owned()),
        );
    }
    Ok(URL_SAFE_NO_PAD.encode(serde_json::Value::Object(position).to_string()))
}

pub(super) fn decode_cursor(cursor: &str, listing: &Listing) -> StoreResult<Item> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let position: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let keys = listing.key_attributes();
    // A cursor only resumes the listing that produced it: same keys, same partition.
    if position.len() != keys.len()
        || !keys.iter().all(|k| position.contains_key(k))
        || position.get(&listing.partition_attribute()) != Some(&listing.partition)
    {
        return Err(StoreError::BadCursor);
    }
    Ok(position.into_iter().map(|(k, v)| (k, s(v))).collect())
}

impl DynamoStore {
    /// A query of one partition, only its sort keys that start with `prefix` if given: the key
    /// condition written once.
    pub(super) fn partition_query(&self, pk: &str, prefix: Option<&str>) -> QueryFluentBuilder {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(pk));
        match prefix {
            Some(prefix) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("pk = :pk"),
        }
    }

    /// All items of a partition (whose sort key starts with `prefix`, if given), in key order.
    pub(super) async fn query_partition(
        &self,
        pk: String,
        prefix: Option<&str>,
        newest_first: bool,
    ) -> StoreResult<Vec<Item>> {
        let query = self
            .partition_query(&pk, prefix)
            .scan_index_forward(!newest_first)
            .consistent_read(true);
        let mut items = Vec::new();
        each_item(query, |item| {
            items.push(item);
            Ok(true)
        })
        .await?;
        Ok(items)
    }

    /// Up to `limit` items of a listing after `cursor`, and the cursor of the next page only if
    /// there is one: one item more than asked for is read to know.
    pub(super) async fn page(
        &self,
        listing: Listing,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<ItemPage> {
        let limit = limit.max(1);
        let mut start = cursor.map(|c| decode_cursor(c, &listing)).transpose()?;
        let partition_attribute = listing.partition_attribute();
        let mut items: Vec<Item> = Vec::new();
        loop {
            let wanted = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(listing.index.map(str::to_owned))
                .expression_attribute_names("#partition", &partition_attribute)
                .expression_attribute_values(":partition", s(&listing.partition))
                .scan_index_forward(listing.forward)
                .limit(wanted)
                .set_exclusive_start_key(start.take());
            query = match &listing.sort_prefix {
                Some(prefix) => query
                    .key_condition_expression(
                        "#partition = :partition AND begins_with(#sort, :prefix)",
                    )
                    .expression_attribute_names("#sort", listing.sort_attribute())
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("#partition = :partition"),
            };
            if let Some((filter, value)) = &listing.filter {
                query = query
                    .filter_expression(*filter)
                    .expression_attribute_values(":activation", value.clone());
            }
            let output = query.send().await.map_err(backend)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if items.len() > limit || start.is_none() {
                break;
            }
        }
        let cursor = if items.len() > limit {
            items.truncate(limit);
            Some(encode_cursor(&items[limit - 1], &listing)?)
        } else {
            None
        };
        Ok(ItemPage { items, cursor })
    }

    /// Every item of an index partition, in index order.
    pub(super) async fn query_partition_of(
        &self,
        index: &'static str,
        partition: &str,
    ) -> StoreResult<Vec<Item>> {
        let listing = Listing::index(index, partition.to_owned(), true);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#partition", listing.partition_attribute())
            .expression_attribute_values(":partition", s(partition))
            .key_condition_expression("#partition = :partition");
        let mut items = Vec::new();
        each_item(query, |item| {
            items.push(item);
            Ok(true)
        })
        .await?;
        Ok(items)
    }
}
