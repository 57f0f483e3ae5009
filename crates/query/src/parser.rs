//! The SQL front end: Calamus's statements layered on sqlparser, the way DataFusion's own
//! `DFParser` adds `CREATE EXTERNAL TABLE`: the leading keywords of each statement decide
//! who parses it; everything standard goes to sqlparser's own parser, except an INSERT of
//! plain literal rows, read from the tokens straight into columns when it is one
//! ([`crate::dml::literal_insert`]). Nothing here looks at the SQL text other than through
//! sqlparser's tokens.

use calamus_domain::model::TableKind;
use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::dialect::CalamusDialect;
use crate::dml::literal_insert;
use crate::error::{QueryError, QueryResult};
use crate::statement::{Statement, UnavailableFeature, UserChange};

/// Statements one call may hold at most.
pub const MAX_STATEMENTS: usize = 10_000;

/// Parses `sql` into its statements (split on `;`, quotes and comments respected).
pub fn parse_statements(sql: &str) -> QueryResult<Vec<Statement>> {
    Ok(parse_statements_with_text(sql)?
        .into_iter()
        .map(|(statement, _)| statement)
        .collect())
}

/// [`parse_statements`], each statement with its own text in `sql` (from its first token to
/// the `;` or the end that closes it, trailing white space left out): what an error can show
/// without printing the statement back.
pub fn parse_statements_with_text(sql: &str) -> QueryResult<Vec<(Statement, &str)>> {
    let dialect = CalamusDialect;
    // About one token in four bytes of SQL (white space is a token too): sized once rather
    // than grown through copies of a large INSERT's tokens.
    let mut tokens = Vec::with_capacity(sql.len() / 4 + 16);
    Tokenizer::new(&dialect, sql)
        .tokenize_with_location_into_buf(&mut tokens)
        .map_err(|e| QueryError::Syntax(e.to_string()))?;
    let tokens = call_forms_of_session_functions(tokens);
    check_chains(&tokens)?;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(64)
        .with_tokens_with_locations(tokens);
    let mut source = SourceOffsets::new(sql);
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let first = parser.peek_token_ref();
        if first.token == Token::EOF {
            break;
        }
        let start = source.offset_of(first.span.start);
        if statements.len() == MAX_STATEMENTS {
            return Err(QueryError::InvalidStatement(format!(
                "a request may hold at most {MAX_STATEMENTS} statements"
            )));
        }
        let statement = CalamusParser { parser: &mut parser }.parse_statement()?;
        let next = parser.peek_token_ref();
        if next.token != Token::SemiColon && next.token != Token::EOF {
            return Err(QueryError::Syntax(format!(
                "expected ';' or the end of the statement, found {}",
                next.token
            )));
        }
        let end = source.offset_of(next.span.start).max(start);
        statements.push((statement, sql[start..end].trim_end()));
    }
    Ok(statements)
}

/// Turns the tokenizer's locations (line and column, counted in characters from 1, as
/// sqlparser counts them) into byte offsets of the text, reading it forward once: the
/// locations asked for only grow.
struct SourceOffsets<'s> {
    sql: &'s str,
    location: Location,
    offset: usize,
}

impl<'s> SourceOffsets<'s> {
    fn new(sql: &'s str) -> Self {
        Self {
            sql,
            location: Location { line: 1, column: 1 },
            offset: 0,
        }
    }

    /// The byte offset of `location`; the end of the text for the end-of-input token
    /// (which has no location: line 0).
    fn offset_of(&mut self, location: Location) -> usize {
        if location.line == 0 {
            return self.sql.len();
        }
        while (self.location.line, self.location.column) < (location.line, location.column) {
            let Some(c) = self.sql[self.offset..].chars().next() else {
                break;
            };
            self.offset += c.len_utf8();
            if c == '\n' {
                self.location.line += 1;
                self.location.column = 1;
            } else {
                self.location.column += 1;
            }
        }
        self.offset
    }
}

/// Dots one chain of names and subscripts (`ns.t.col[1].field`) may hold, counting those of
/// the chains whose subscripts enclose it. sqlparser (0.62) reads the rest of a chain again
/// at every dot when something inside the chain fails to parse, so the time a failing chain
/// takes doubles with each dot: 25 dots took over a minute. Real names have a few.
pub const MAX_CHAIN_DOTS: usize = 8;

/// Refuses a chain of more than [`MAX_CHAIN_DOTS`] dots before sqlparser reads it.
fn check_chains(tokens: &[TokenWithSpan]) -> QueryResult<()> {
    // The dots of the chain being read, and the count at each open `[` (a subscript's
    // contents are parsed inside its chain).
    let mut dots = 0;
    let mut open: Vec<usize> = Vec::new();
    let mut after_dot = false;
    for token in tokens.iter().map(|t| &t.token) {
        match token {
            Token::Whitespace(_) => continue,
            Token::Period => {
                dots += 1;
                if dots > MAX_CHAIN_DOTS {
                    return Err(QueryError::Syntax(format!(
                        "a chain of names and subscripts (a.b[1].c) may hold at most {MAX_CHAIN_DOTS} dots"
                    )));
                }
            }
            Token::Word(_) | Token::Number(..) | Token::SingleQuotedString(_) | Token::Placeholder(_) if after_dot => {}
            Token::LBracket => open.push(dots),
            Token::RBracket => dots = open.pop().unwrap_or(0),
            Token::SemiColon => {
                open.clear();
                dots = 0;
            }
            _ => dots = open.last().copied().unwrap_or(0),
        }
        after_dot = *token == Token::Period;
    }
    Ok(())
}

/// `CURRENT_USER`, `CURRENT_ROLE`, ... are keywords that sqlparser reads without
/// parentheses; SQL.md also allows the call form `CURRENT_USER()`. A keyword directly
/// followed by `()` is turned into a plain word, so it parses as a function call.
fn call_forms_of_session_functions(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    for w in significant.windows(3) {
        let followed_by_call = tokens[w[1]].token == Token::LParen && tokens[w[2]].token == Token::RParen;
        if let Token::Word(word) = &mut tokens[w[0]].token
            && followed_by_call
            && matches!(
                word.keyword,
                Keyword::CURRENT_USER | Keyword::CURRENT_ROLE | Keyword::SESSION_USER | Keyword::USER
            )
            && word.quote_style.is_none()
        {
            word.keyword = Keyword::NoKeyword;
        }
    }
    tokens
}

fn syntax(e: ParserError) -> QueryError {
    let text = e.to_string();
    QueryError::Syntax(text.strip_prefix("sql parser error: ").unwrap_or(&text).to_owned())
}

struct CalamusParser<'p, 'd> {
    parser: &'p mut Parser<'d>,
}

impl CalamusParser<'_, '_> {
    /// The upper-cased word `n` tokens ahead, if that token is a word.
    fn word(&self, n: usize) -> Option<String> {
        match self.parser.peek_nth_token(n).token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn words_are(&self, words: &[&str]) -> bool {
        words
            .iter()
            .enumerate()
            .all(|(i, w)| self.word(i).as_deref() == Some(*w))
    }

    /// Consumes the next words if they are exactly `words`.
    fn eat_words(&mut self, words: &[&str]) -> bool {
        if self.words_are(words) {
            for _ in words {
                self.parser.next_token();
            }
            true
        } else {
            false
        }
    }

    fn expect_words(&mut self, words: &[&str]) -> QueryResult<()> {
        if self.eat_words(words) {
            Ok(())
        } else {
            Err(QueryError::Syntax(format!(
                "expected {}, found {}",
                words.join(" "),
                self.parser.peek_token().token
            )))
        }
    }

    fn if_not_exists(&mut self) -> bool {
        self.parser
            .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS])
    }

    fn if_exists(&mut self) -> bool {
        self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS])
    }

    fn ident(&mut self) -> QueryResult<Ident> {
        self.parser.parse_identifier().map_err(syntax)
    }

    fn object_name(&mut self) -> QueryResult<ObjectName> {
        self.parser.parse_object_name(false).map_err(syntax)
    }

    fn string(&mut self) -> QueryResult<String> {
        self.parser.parse_literal_string().map_err(syntax)
    }

    /// A table kind word (`USER`, `SHARED`, `STREAM`) directly followed by `TABLE`.
    fn table_kind_then_table(&mut self) -> Option<Option<TableKind>> {
        for (word, kind) in [
            ("USER", TableKind::User),
            ("SHARED", TableKind::Shared),
            ("STREAM", TableKind::Stream),
        ] {
            if self.eat_words(&[word, "TABLE"]) {
                return Some(Some(kind));
            }
        }
        if self.eat_words(&["TABLE"]) {
            return Some(None);
        }
        None
    }

    fn parse_statement(&mut self) -> QueryResult<Statement> {
        let first = self.word(0).unwrap_or_default();
        match first.as_str() {
            "CREATE" => self.parse_create(),
            "DROP" => self.parse_drop(),
            "ALTER" if matches!(self.word(1).as_deref(), Some("NAMESPACE" | "USER" | "STORAGE")) => self.parse_alter(),
            "SHOW" => self.parse_show(),
            "USE" => {
                self.parser.next_token();
                self.eat_words(&["NAMESPACE"]);
                Ok(Statement::Use {
                    namespace: self.ident()?,
                })
            }
            "DESCRIBE" | "DESC" if matches!(self.word(1).as_deref(), Some("TABLE")) => {
                self.parser.next_token();
                self.parser.next_token();
                let name = self.object_name()?;
                let history = self.eat_words(&["HISTORY"]);
                Ok(Statement::DescribeTable { name, history })
            }
            "EXECUTE" if self.words_are(&["EXECUTE", "AS", "USER"]) => self.parse_execute_as(),
            "SUBSCRIBE" => self.not_available(UnavailableFeature::Subscribe),
            "KILL" if self.eat_words(&["KILL", "LIVE", "QUERY"]) => Ok(Statement::KillLiveQuery {
                live_id: self.string()?,
            }),
            "KILL" if self.eat_words(&["KILL", "JOB"]) => Ok(Statement::KillJob { job_id: self.string()? }),
            "BACKUP" => self.parse_backup(),
            "FLUSH" | "STORAGE" => self.parse_flush(),
            "INSERT" => match self.parser.maybe_parse(literal_insert::read).map_err(syntax)? {
                Some(insert) => Ok(Statement::InsertLiteralRows(Box::new(insert))),
                None => Ok(Statement::Sql(Box::new(self.parser.parse_statement().map_err(syntax)?))),
            },
            _ => Ok(Statement::Sql(Box::new(self.parser.parse_statement().map_err(syntax)?))),
        }
    }

    /// `FLUSH TABLE t`, `STORAGE FLUSH TABLE t`, `STORAGE FLUSH ALL [IN ns]`,
    /// `STORAGE COMPACT TABLE t`, `STORAGE COMPACT ALL [IN ns]`.
    fn parse_flush(&mut self) -> QueryResult<Statement> {
        const FLUSH: &str = "FLUSH TABLE t, STORAGE FLUSH TABLE t or STORAGE FLUSH ALL [IN ns]";
        const COMPACT: &str = "STORAGE COMPACT TABLE t or STORAGE COMPACT ALL [IN ns]";
        let storage = self.eat_words(&["STORAGE"]);
        if storage && self.eat_words(&["COMPACT"]) {
            let (table, namespace) = self.table_or_all(COMPACT)?;
            return Ok(Statement::Compact { table, namespace });
        }
        if !self.eat_words(&["FLUSH"]) || !(storage || self.words_are(&["TABLE"])) {
            return Err(QueryError::Syntax(format!("expected {FLUSH} or {COMPACT}")));
        }
        let (table, namespace) = self.table_or_all(FLUSH)?;
        Ok(Statement::Flush { table, namespace })
    }

    /// `TABLE t` or `ALL [IN ns]`, after a storage statement's verb.
    fn table_or_all(&mut self, expected: &str) -> QueryResult<(Option<ObjectName>, Option<Ident>)> {
        if self.eat_words(&["TABLE"]) {
            return Ok((Some(self.object_name()?), None));
        }
        if self.eat_words(&["ALL"]) {
            let namespace = if self.eat_words(&["IN"]) {
                Some(self.ident()?)
            } else {
                None
            };
            return Ok((None, namespace));
        }
        Err(QueryError::Syntax(format!("expected {expected}")))
    }

    /// `BACKUP DATABASE TO '<path>'`.
    fn parse_backup(&mut self) -> QueryResult<Statement> {
        self.expect_words(&["BACKUP", "DATABASE"])?;
        if !self.words_are(&["TO"]) {
            return Err(QueryError::Syntax(format!(
                "expected BACKUP DATABASE TO '<path>', found {}: a backup always covers the whole database",
                self.parser.peek_token().token
            )));
        }
        self.parser.next_token();
        Ok(Statement::BackupDatabase { path: self.string()? })
    }

    /// Consumes the rest of the statement and reports a feature this version lacks.
    fn not_available(&mut self, feature: UnavailableFeature) -> QueryResult<Statement> {
        self.skip_rest();
        Ok(Statement::NotAvailable { feature })
    }

    /// Consumes the tokens up to the end of the statement.
    fn skip_rest(&mut self) {
        loop {
            let token = self.parser.peek_token().token;
            if token == Token::SemiColon || token == Token::EOF {
                break;
            }
            self.parser.next_token();
        }
    }

    fn parse_create(&mut self) -> QueryResult<Statement> {
        self.parser.next_token(); // CREATE
        if self.eat_words(&["NAMESPACE"]) {
            let if_not_exists = self.if_not_exists();
            return Ok(Statement::CreateNamespace {
                if_not_exists,
                name: self.ident()?,
            });
        }
        if let Some(kind) = self.table_kind_then_table() {
            let create = self
                .parser
                .parse_create_table(false, false, None, false)
                .map_err(syntax)?;
            let legacy_options = self.legacy_table_options()?;
            return Ok(Statement::CreateTable {
                kind,
                create: Box::new(create),
                legacy_options,
            });
        }
        if self.eat_words(&["USER"]) {
            let if_not_exists = self.if_not_exists();
            let name = self.ident()?;
            let (mut password, mut role, mut email) = (None, None, None);
            loop {
                if self.eat_words(&["WITH"]) {
                    continue;
                } else if self.eat_words(&["PASSWORD"]) {
                    password = Some(self.string()?);
                } else if self.eat_words(&["ROLE"]) {
                    role = Some(self.ident()?.value);
                } else if self.eat_words(&["EMAIL"]) {
                    email = Some(self.string()?);
                } else {
                    break;
                }
            }
            return Ok(Statement::CreateUser {
                name,
                if_not_exists,
                password,
                role,
                email,
            });
        }
        if self.eat_words(&["STORAGE"]) {
            let if_not_exists = self.if_not_exists();
            let name = self.ident()?;
            let options = self.storage_options()?;
            return Ok(Statement::CreateStorage {
                name,
                if_not_exists,
                options,
            });
        }
        let unique = self.eat_words(&["UNIQUE"]);
        if self.eat_words(&["INDEX"]) {
            // CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table (...)
            let _ = unique;
            self.if_not_exists();
            if !self.parser.parse_keyword(Keyword::ON) {
                self.ident()?;
                self.parser.expect_keyword(Keyword::ON).map_err(syntax)?;
            }
            let table = self.object_name()?;
            self.skip_rest();
            return Ok(Statement::Index {
                table: Some(table),
                create: true,
            });
        }
        if unique {
            return Err(QueryError::Syntax("expected INDEX after CREATE UNIQUE".into()));
        }
        self.parser.prev_token();
        Ok(Statement::Sql(Box::new(self.parser.parse_statement().map_err(syntax)?)))
    }

    /// The older trailing options: `FLUSH ROWS n`, `FLUSH INTERVAL s`, `TTL n`, `BUFFER_SIZE n`.
    fn legacy_table_options(&mut self) -> QueryResult<Vec<(String, Expr)>> {
        let mut options = Vec::new();
        loop {
            if self.eat_words(&["FLUSH", "ROWS"]) {
                options.push(("flush_rows".into(), self.parser.parse_expr().map_err(syntax)?));
            } else if self.eat_words(&["FLUSH", "INTERVAL"]) {
                options.push(("flush_interval".into(), self.parser.parse_expr().map_err(syntax)?));
            } else if self.eat_words(&["TTL"]) {
                options.push(("ttl_seconds".into(), self.parser.parse_expr().map_err(syntax)?));
            } else if self.eat_words(&["BUFFER_SIZE"]) {
                options.push(("buffer_size".into(), self.parser.parse_expr().map_err(syntax)?));
            } else {
                return Ok(options);
            }
        }
    }

    fn parse_drop(&mut self) -> QueryResult<Statement> {
        self.parser.next_token(); // DROP
        if self.eat_words(&["NAMESPACE"]) {
            let if_exists = self.if_exists();
            let name = self.ident()?;
            let cascade = self.eat_words(&["CASCADE"]);
            if !cascade {
                self.eat_words(&["RESTRICT"]);
            }
            return Ok(Statement::DropNamespace {
                name,
                if_exists,
                cascade,
            });
        }
        if let Some(kind) = self.table_kind_then_table() {
            let if_exists = self.if_exists();
            return Ok(Statement::DropTable {
                kind,
                if_exists,
                name: self.object_name()?,
            });
        }
        if self.eat_words(&["USER"]) {
            let if_exists = self.if_exists();
            return Ok(Statement::DropUser {
                if_exists,
                name: self.ident()?,
            });
        }
        if self.eat_words(&["STORAGE"]) {
            let if_exists = self.if_exists();
            return Ok(Statement::DropStorage {
                if_exists,
                name: self.ident()?,
            });
        }
        if self.eat_words(&["INDEX"]) {
            self.if_exists();
            self.object_name()?;
            return Ok(Statement::Index {
                table: None,
                create: false,
            });
        }
        self.parser.prev_token();
        Ok(Statement::Sql(Box::new(self.parser.parse_statement().map_err(syntax)?)))
    }

    fn parse_alter(&mut self) -> QueryResult<Statement> {
        self.parser.next_token(); // ALTER
        if self.eat_words(&["NAMESPACE"]) {
            let name = self.ident()?;
            self.expect_words(&["SET", "OPTIONS"])?;
            self.parser.expect_token(&Token::LParen).map_err(syntax)?;
            let mut options = Vec::new();
            loop {
                let key = self.ident()?.value;
                self.parser.expect_token(&Token::Eq).map_err(syntax)?;
                let value = match self.parser.next_token().token {
                    Token::SingleQuotedString(s) => s,
                    Token::Number(n, _) => n,
                    Token::Word(w) => w.value,
                    other => return Err(QueryError::Syntax(format!("expected an option value, found {other}"))),
                };
                options.push((key, value));
                if !self.parser.consume_token(&Token::Comma) {
                    break;
                }
            }
            self.parser.expect_token(&Token::RParen).map_err(syntax)?;
            return Ok(Statement::AlterNamespace { name, options });
        }
        if self.eat_words(&["USER"]) {
            let name = self.ident()?;
            self.expect_words(&["SET"])?;
            let change = if self.eat_words(&["PASSWORD"]) {
                UserChange::Password(self.string()?)
            } else if self.eat_words(&["ROLE"]) {
                UserChange::Role(self.ident()?.value)
            } else if self.eat_words(&["EMAIL"]) {
                UserChange::Email(self.string()?)
            } else {
                return Err(QueryError::Syntax(
                    "ALTER USER takes SET PASSWORD 'p', SET ROLE r or SET EMAIL 'e'".into(),
                ));
            };
            return Ok(Statement::AlterUser { name, change });
        }
        self.expect_words(&["STORAGE"])?;
        let name = self.ident()?;
        self.expect_words(&["SET"])?;
        let options = self.storage_options()?;
        if options.is_empty() {
            return Err(QueryError::Syntax(
                "ALTER STORAGE id SET takes options: BASE_DIRECTORY '...', SHARED_TABLES_TEMPLATE '...', \
                 USER_TABLES_TEMPLATE '...'"
                    .into(),
            ));
        }
        Ok(Statement::AlterStorage { name, options })
    }

    /// `NAME [=] 'value'` pairs of a storage, optionally comma separated.
    fn storage_options(&mut self) -> QueryResult<Vec<(String, String)>> {
        let mut options = Vec::new();
        while let Some(word) = self.word(0) {
            let known = [
                "TYPE",
                "BASE_DIRECTORY",
                "SHARED_TABLES_TEMPLATE",
                "USER_TABLES_TEMPLATE",
            ];
            if !known.contains(&word.as_str()) {
                return Err(QueryError::Syntax(format!(
                    "unknown storage option {word}: the options are TYPE, BASE_DIRECTORY, SHARED_TABLES_TEMPLATE \
                     and USER_TABLES_TEMPLATE"
                )));
            }
            self.parser.next_token();
            let _ = self.parser.consume_token(&Token::Eq);
            options.push((word, self.string()?));
            let _ = self.parser.consume_token(&Token::Comma);
        }
        Ok(options)
    }

    fn parse_show(&mut self) -> QueryResult<Statement> {
        if self.eat_words(&["SHOW", "NAMESPACES"]) {
            return Ok(Statement::ShowNamespaces);
        }
        if self.eat_words(&["SHOW", "TABLES"]) {
            let namespace = if self.eat_words(&["IN"]) || self.eat_words(&["FROM"]) {
                Some(self.ident()?)
            } else {
                None
            };
            return Ok(Statement::ShowTables { namespace });
        }
        if self.eat_words(&["SHOW", "STATS", "FOR", "TABLE"]) {
            return Ok(Statement::ShowStats {
                name: self.object_name()?,
            });
        }
        if self.eat_words(&["SHOW", "STORAGES"]) {
            return Ok(Statement::ShowStorages);
        }
        Err(QueryError::Syntax(format!(
            "unknown SHOW statement: expected SHOW NAMESPACES, SHOW TABLES [IN ns] or SHOW STATS FOR TABLE t, found SHOW {}",
            self.parser.peek_nth_token(1).token
        )))
    }

    fn parse_execute_as(&mut self) -> QueryResult<Statement> {
        self.expect_words(&["EXECUTE", "AS", "USER"])?;
        let user = match self.parser.next_token().token {
            Token::SingleQuotedString(s) => s,
            Token::Word(w) => w.value,
            other => {
                return Err(QueryError::Syntax(format!(
                    "expected a user id after EXECUTE AS USER, found {other}"
                )));
            }
        };
        self.parser.expect_token(&Token::LParen).map_err(syntax)?;
        let inner = self.parse_statement()?;
        let _ = self.parser.consume_token(&Token::SemiColon);
        self.parser.expect_token(&Token::RParen).map_err(syntax)?;
        if matches!(inner, Statement::ExecuteAs { .. }) {
            return Err(QueryError::InvalidStatement("EXECUTE AS USER cannot be nested".into()));
        }
        Ok(Statement::ExecuteAs {
            user,
            statement: Box::new(inner),
        })
    }
}

/// SQL for tests of the readings that bypass sqlparser's own, which compare the two.
#[cfg(test)]
pub(crate) mod test_sql {
    use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
    use datafusion::sql::sqlparser::parser::{Parser, ParserError};

    use crate::dialect::CalamusDialect;

    /// The statements sqlparser's own parser makes of `sql`.
    pub(crate) fn sqlparser_statements(sql: &str) -> Result<Vec<SqlStatement>, ParserError> {
        Parser::parse_sql(&CalamusDialect, sql)
    }

    /// The SQL of every record of the project's SQL logic tests (`tests/slt`): a record's
    /// SQL runs from the line after `statement` or `query` to a blank line or its expected
    /// results, and may hold several statements.
    pub(crate) fn logic_test_records() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/slt");
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "slt") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut sql: Option<String> = None;
            for line in text.lines().chain([""]) {
                match &mut sql {
                    Some(_) if line.trim().is_empty() || line.starts_with("----") => {
                        records.extend(sql.take());
                    }
                    Some(body) => {
                        body.push('\n');
                        body.push_str(line);
                    }
                    None if line.starts_with("statement") || line.starts_with("query") => sql = Some(String::new()),
                    None => {}
                }
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        let mut all = parse_statements(sql).unwrap();
        assert_eq!(all.len(), 1, "{sql}");
        all.remove(0)
    }

    #[test]
    fn calamus_statements_parse() {
        assert!(matches!(
            one("CREATE NAMESPACE IF NOT EXISTS app"),
            Statement::CreateNamespace {
                if_not_exists: true,
                ..
            }
        ));
        assert!(matches!(
            one("drop namespace app cascade"),
            Statement::DropNamespace { cascade: true, .. }
        ));
        assert!(matches!(
            one("CREATE USER TABLE app.t (id INT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:10')"),
            Statement::CreateTable {
                kind: Some(TableKind::User),
                ..
            }
        ));
        assert!(matches!(
            one("CREATE STREAM TABLE s (id INT) TTL 10"),
            Statement::CreateTable { kind: Some(TableKind::Stream), ref legacy_options, .. } if legacy_options.len() == 1
        ));
        assert!(matches!(
            one("CREATE TABLE t (a INT)"),
            Statement::CreateTable { kind: None, .. }
        ));
        assert!(matches!(
            one("CREATE USER alice WITH PASSWORD 'x' ROLE dba"),
            Statement::CreateUser { .. }
        ));
        assert!(matches!(
            one("ALTER USER alice SET ROLE dba"),
            Statement::AlterUser { .. }
        ));
        assert!(matches!(
            one("EXECUTE AS USER 'alice' (SELECT 1)"),
            Statement::ExecuteAs { .. }
        ));
        assert!(matches!(
            one("DESC TABLE t HISTORY"),
            Statement::DescribeTable { history: true, .. }
        ));
        assert!(matches!(one("SELECT 1"), Statement::Sql(_)));
    }

    #[test]
    fn batches_split_on_semicolons_outside_quotes_and_comments() {
        let all = parse_statements("SELECT ';'; -- x; y\n SELECT 2;; /* ; */ SELECT 3").unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn each_statement_keeps_its_own_text() {
        let texts = |sql| -> Vec<&str> {
            parse_statements_with_text(sql)
                .unwrap()
                .into_iter()
                .map(|(_, text)| text)
                .collect()
        };
        assert_eq!(
            texts("SELECT ';'; -- x; y\n SELECT  2 ;; /* ; */ SELECT 3\n"),
            ["SELECT ';'", "SELECT  2", "SELECT 3"]
        );
        // Columns count characters, not bytes; lines restart them.
        assert_eq!(
            texts("INSERT INTO t VALUES ('héllo wörld');\r\n  SELECT 'ü' AS \"é\" ;SHOW TABLES"),
            [
                "INSERT INTO t VALUES ('héllo wörld')",
                "SELECT 'ü' AS \"é\"",
                "SHOW TABLES"
            ]
        );
        assert_eq!(texts("  SELECT\n  1\n  FROM t  "), ["SELECT\n  1\n  FROM t"]);
        assert!(texts(" ;; -- nothing\n").is_empty());
    }

    #[test]
    fn long_chains_are_refused_before_sqlparser_reads_them() {
        // Found by fuzzing (fuzz/ sql_parser): sqlparser read this for minutes, twice as long
        // for every dot of the chains inside the subscripts.
        let found: &[u8] =
            b"SELECT[ CU. CASTELECT[ CU. CAST. CASTTRS_U.U[ CURRENTER_US. CASTTCASTTR_U.U[ CURRUS. CASTT\
          RSRS_U. CUU. CRURENTER_UU.U[ CURRENTER_US. CASTTCASTTR_U.U[ CURRUS. CASTTRSRS_U. CUU. CRUR\
          . CASTTRS_U.U[ CURRENTER_US. CASTTCASTTR_U.U[ CURRUS. CASTTRSRS_U. CUU. CRURENTER_UU.U[ CU\
          RRENTER_US. CASTTCASTTR_U.U[ CURRUS. CASTTRSRS_U. CUU. CRURENTERS.$URRS_U.U[NNT";
        let started = std::time::Instant::now();
        let sql = String::from_utf8_lossy(found);
        assert!(matches!(parse_statements(&sql), Err(QueryError::Syntax(_))));
        let chain = format!("SELECT {}x[1 +]", "a.".repeat(30));
        assert!(matches!(parse_statements(&chain), Err(QueryError::Syntax(e)) if e.contains("dots")));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Chains of real names, and many of them in a row, still parse.
        one(
            "SELECT ns.t.a[1].b, t.c[t.d[2]].e FROM ns.t WHERE t.x IS NULL AND t.y IS NULL AND t.z IS NULL \
             AND t.w IS NULL AND t.v IS NULL AND t.u IS NULL AND t.s IS NULL AND t.r IS NULL AND t.q IS NULL",
        );
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        assert!(matches!(parse_statements("SELEC 1"), Err(QueryError::Syntax(_))));
        assert!(matches!(
            parse_statements("SELECT 1 SELECT 2"),
            Err(QueryError::Syntax(_))
        ));
    }
}
