//! The check of one statement against the roles table, before it runs.

use calamus_domain::model::Role;
use calamus_domain::{CatalogSnapshot, NamespaceId, TableId, TableName, UserId};
use datafusion::common::TableReference;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{
    Expr, FromTable, Insert, ObjectName, Query, SetExpr, Statement as SqlStatement, TableFactor, TableObject,
    TableWithJoins, Values,
};

use super::rules::{
    self, SystemTableAccess, denied, may_administer, may_alter_table, may_create_table, may_execute_as,
    may_manage_user_with, may_operate, may_read, may_write, system_table_access,
};
use crate::ddl::create_table::declared_kind;
use crate::engine::{CATALOG_NAME, table_id};
use crate::error::QueryResult;
use crate::session::Session;
use crate::statement::{Statement, UnavailableFeature, UserChange};

/// Checks that `session` may run `statement`, with the catalog as `snapshot` holds it.
///
/// Fails only with [`crate::QueryError::PermissionDenied`]. A table or user the snapshot
/// does not hold passes: an earlier statement of the batch may create it, and otherwise the
/// statement fails as not found when it runs (where it is checked again).
pub fn authorize(snapshot: &CatalogSnapshot, session: &Session, statement: &Statement) -> QueryResult<()> {
    StatementCheck { snapshot, session }.statement(statement)
}

struct StatementCheck<'a> {
    snapshot: &'a CatalogSnapshot,
    session: &'a Session,
}

impl StatementCheck<'_> {
    fn role(&self) -> Role {
        self.session.role
    }

    /// Refuses unless `allowed`; `what` says what was refused, for dba and system callers.
    fn require(&self, allowed: bool, what: impl FnOnce() -> String) -> QueryResult<()> {
        if allowed {
            Ok(())
        } else {
            let role = self.role();
            Err(denied(role, || format!("role {role} may not {}", what())))
        }
    }

    fn administer(&self, what: &str) -> QueryResult<()> {
        self.require(may_administer(self.role()), || what.to_owned())
    }

    fn statement(&self, statement: &Statement) -> QueryResult<()> {
        match statement {
            Statement::CreateNamespace { .. } => self.administer("create namespaces"),
            Statement::AlterNamespace { .. } => self.administer("alter namespaces"),
            Statement::DropNamespace { .. } => self.administer("drop namespaces"),
            // Their output holds only what the role may read (see show.rs).
            Statement::ShowNamespaces | Statement::ShowTables { .. } | Statement::Use { .. } => Ok(()),
            // Whose live query it is can only be told when it runs (see `live::kill`).
            Statement::KillLiveQuery { .. } => Ok(()),
            Statement::Flush { .. } => self.require(may_operate(self.role()), || "flush tables".into()),
            Statement::Compact { .. } => self.require(may_operate(self.role()), || "compact tables".into()),
            Statement::KillJob { .. } => self.require(may_operate(self.role()), || "kill jobs".into()),
            Statement::BackupDatabase { .. } => self.administer("back up the database"),
            Statement::CreateStorage { .. }
            | Statement::AlterStorage { .. }
            | Statement::DropStorage { .. }
            | Statement::ShowStorages => self.administer("manage storages"),
            Statement::CreateTable {
                kind,
                create,
                legacy_options,
            } => {
                // Options that do not parse fail the statement when it runs, before anything
                // is created; until then the prefix is the best knowledge of the kind.
                let declared = declared_kind(*kind, create, legacy_options).map(|(k, _)| k).ok();
                match declared.or(*kind) {
                    Some(kind) => self.require(may_create_table(self.role(), kind), || format!("create {kind} tables")),
                    None => Ok(()),
                }
            }
            Statement::DropTable { .. } => self.administer("drop tables"),
            Statement::DescribeTable { name, .. } | Statement::ShowStats { name } => self.read_name(name),
            // CREATE/DROP INDEX build nothing: they need only to see the table.
            Statement::Index { table, .. } => table.as_ref().map_or(Ok(()), |name| self.read_name(name)),
            Statement::CreateUser { role, .. } => {
                self.administer("create users")?;
                match role.as_deref().map(Role::parse) {
                    Some(Ok(granted)) => self.require(may_manage_user_with(self.role(), granted), || {
                        format!("create a user with role {granted}")
                    }),
                    _ => Ok(()),
                }
            }
            Statement::AlterUser { name, change } => self.alter_user(&name.value, change),
            Statement::DropUser { name, .. } => {
                self.administer("drop users")?;
                self.touch_user(&name.value, "drop")
            }
            Statement::ExecuteAs { user, statement } => self.execute_as(user, statement),
            Statement::NotAvailable {
                feature: UnavailableFeature::Subscribe,
            } => Ok(()),
            // Like the same INSERT parsed (see `Self::sql`): it writes its target and reads
            // nothing else.
            Statement::InsertLiteralRows(insert) => {
                self.write_name(&insert.table)?;
                self.read_name(&insert.table)
            }
            Statement::Sql(statement) => self.sql(statement),
        }
    }

    /// `ALTER USER`: anyone may set their own password; everything else is administration,
    /// and only system gives or touches role system.
    fn alter_user(&self, name: &str, change: &UserChange) -> QueryResult<()> {
        let target = UserId::new(name).ok();
        if matches!(change, UserChange::Password(_)) && target.as_ref() == Some(&self.session.user) {
            return Ok(());
        }
        self.administer("alter other users")?;
        if let UserChange::Role(granted) = change
            && let Ok(granted) = Role::parse(granted)
        {
            self.require(may_manage_user_with(self.role(), granted), || {
                format!("give a user role {granted}")
            })?;
        }
        self.touch_user(name, "alter")
    }

    /// Refuses to change or drop an existing user whose role the caller may not manage.
    fn touch_user(&self, name: &str, verb: &str) -> QueryResult<()> {
        let Some(target) = UserId::new(name).ok().and_then(|id| self.snapshot.users.get(&id)) else {
            return Ok(());
        };
        self.require(may_manage_user_with(self.role(), target.role), || {
            format!("{verb} user '{}', who has role {}", target.id, target.role)
        })
    }

    /// `EXECUTE AS USER`: the caller may act as the target, and the target may run the
    /// statement.
    fn execute_as(&self, user: &str, inner: &Statement) -> QueryResult<()> {
        self.require(self.role() > Role::User, || "EXECUTE AS USER".into())?;
        let Some(target) = UserId::new(user).ok().and_then(|id| self.snapshot.users.get(&id)) else {
            return Ok(());
        };
        self.require(may_execute_as(self.role(), target.role), || {
            format!("EXECUTE AS USER with role {}", target.role)
        })?;
        let as_target = Session {
            user: target.id.clone(),
            role: target.role,
            namespace: self.session.namespace.clone(),
        };
        StatementCheck {
            snapshot: self.snapshot,
            session: &as_target,
        }
        .statement(inner)
    }

    /// Standard SQL: the table it writes or alters, and every table it reads.
    fn sql(&self, statement: &SqlStatement) -> QueryResult<()> {
        match statement {
            SqlStatement::Insert(insert) => {
                if let TableObject::TableName(name) = &insert.table {
                    self.write_name(name)?;
                }
            }
            SqlStatement::Update(update) => self.write_relations(std::slice::from_ref(&update.table))?,
            SqlStatement::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
                self.write_relations(from)?;
                for name in &delete.tables {
                    self.write_name(name)?;
                }
            }
            SqlStatement::AlterTable(alter) => self.alter_table(&alter.name)?,
            _ => {}
        }
        self.reads(statement)
    }

    /// Every table `statement` names (CTE names aside) must be readable.
    fn reads(&self, statement: &SqlStatement) -> QueryResult<()> {
        if let Some(target) = literal_insert_target(statement) {
            // A large INSERT of literal rows: read once, not cloned and walked again.
            return self.read_name(&target);
        }
        let wrapped = DfStatement::Statement(Box::new(statement.clone()));
        // A statement whose names do not resolve fails when it is planned.
        let Ok((references, _)) = resolve_table_references(&wrapped, true) else {
            return Ok(());
        };
        for reference in &references {
            if let Some(id) = self.reference_id(reference) {
                self.read(&id)?;
            }
        }
        Ok(())
    }

    /// The table a DataFusion reference names, as the statement's catalog resolves it.
    fn reference_id(&self, reference: &TableReference) -> Option<TableId> {
        let (namespace, table) = match reference {
            TableReference::Bare { table } => (self.session.namespace.clone(), table),
            TableReference::Partial { schema, table } => (NamespaceId::new(schema).ok()?, table),
            TableReference::Full { catalog, schema, table } if catalog.as_ref() == CATALOG_NAME => {
                (NamespaceId::new(schema).ok()?, table)
            }
            TableReference::Full { .. } => return None,
        };
        Some(TableId::new(namespace, TableName::new(table).ok()?))
    }

    fn read(&self, id: &TableId) -> QueryResult<()> {
        let role = self.role();
        if id.namespace == NamespaceId::system() {
            let access = system_table_access(role, id.table.as_str());
            return self.require(access != SystemTableAccess::Nothing, || format!("read {id}"));
        }
        match self.snapshot.table(id) {
            Some(table) => self.require(may_read(role, table), || format!("read {id}")),
            None => Ok(()),
        }
    }

    fn read_name(&self, name: &ObjectName) -> QueryResult<()> {
        match table_id(&self.session.namespace, name) {
            Ok(id) => self.read(&id),
            Err(_) => Ok(()),
        }
    }

    fn write_relations(&self, relations: &[TableWithJoins]) -> QueryResult<()> {
        for relation in relations {
            if let TableFactor::Table { name, .. } = &relation.relation {
                self.write_name(name)?;
            }
        }
        Ok(())
    }

    fn write_name(&self, name: &ObjectName) -> QueryResult<()> {
        let Ok(id) = table_id(&self.session.namespace, name) else {
            return Ok(());
        };
        rules::writable(self.role(), &id)?;
        match self.snapshot.table(&id) {
            Some(table) => self.require(may_write(self.role(), table), || format!("write {id}")),
            None => Ok(()),
        }
    }

    fn alter_table(&self, name: &ObjectName) -> QueryResult<()> {
        // No table of any kind is alterable below service: refuse before looking it up.
        self.require(self.role() >= Role::Service, || "alter tables".into())?;
        let Ok(id) = table_id(&self.session.namespace, name) else {
            return Ok(());
        };
        match self.snapshot.table(&id) {
            Some(table) => self.require(may_alter_table(self.role(), table.kind), || {
                format!("alter {} table {id}", table.kind)
            }),
            None => Ok(()),
        }
    }
}

/// The target of an INSERT whose every expression is a literal (a `$n` parameter, a signed
/// number) and which names no other table: `INSERT ... VALUES` of plain rows, which reads
/// nothing else. `None` for any other statement (a subquery is an expression that is not
/// a literal, so an INSERT holding one is not this).
///
/// The statement is matched field by field, every field named: a field that a later
/// sqlparser adds fails the build here instead of going unchecked. Any clause beyond the
/// target, its columns and the rows (`ON CONFLICT`, `RETURNING`, a `WITH`, ...) gives
/// `None`, and the statement's reads are then resolved the general way.
fn literal_insert_target(statement: &SqlStatement) -> Option<ObjectName> {
    let SqlStatement::Insert(Insert {
        insert_token: _,
        optimizer_hints: _,
        or: _,
        ignore: _,
        into: _,
        table,
        table_alias: _,
        columns: _,
        overwrite: _,
        source,
        assignments,
        partitioned,
        after_columns: _,
        has_table_keyword: _,
        on,
        returning,
        output,
        replace_into: _,
        priority: _,
        insert_alias,
        settings,
        format_clause,
        multi_table_insert_type,
        multi_table_into_clauses,
        multi_table_when_clauses,
        multi_table_else_clause,
    }) = statement
    else {
        return None;
    };
    let TableObject::TableName(target) = table else {
        return None;
    };
    let only_rows = assignments.is_empty()
        && partitioned.is_none()
        && on.is_none()
        && returning.is_none()
        && output.is_none()
        && insert_alias.is_none()
        && settings.is_none()
        && format_clause.is_none()
        && multi_table_insert_type.is_none()
        && multi_table_into_clauses.is_empty()
        && multi_table_when_clauses.is_empty()
        && multi_table_else_clause.is_none();
    (only_rows && source.as_deref().is_some_and(is_literal_rows)).then(|| target.clone())
}

/// Whether `query` is nothing but `VALUES` rows of literals.
fn is_literal_rows(query: &Query) -> bool {
    let Query {
        with,
        body,
        order_by,
        limit_clause,
        fetch,
        locks,
        for_clause,
        settings,
        format_clause,
        pipe_operators,
    } = query;
    let SetExpr::Values(Values { rows, .. }) = body.as_ref() else {
        return false;
    };
    with.is_none()
        && order_by.is_none()
        && limit_clause.is_none()
        && fetch.is_none()
        && locks.is_empty()
        && for_clause.is_none()
        && settings.is_none()
        && format_clause.is_none()
        && pipe_operators.is_empty()
        && rows.iter().all(|row| row.content.iter().all(is_literal))
}

/// A value, a `$n` parameter, or one with a sign (`-1`).
fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } => is_literal(expr),
        _ => false,
    }
}

#[cfg(test)]
mod literal_insert_tests {
    use super::*;
    use crate::parser::test_sql::sqlparser_statements;

    fn target_of(sql: &str) -> Option<String> {
        let statement = sqlparser_statements(sql).unwrap().remove(0);
        literal_insert_target(&statement).map(|name| name.to_string())
    }

    #[test]
    fn only_inserts_of_literal_rows_skip_the_walk_of_their_reads() {
        assert_eq!(
            target_of("INSERT INTO app.t VALUES (1, 'a', -2, $1, NULL)").as_deref(),
            Some("app.t")
        );
        assert_eq!(target_of("INSERT INTO t (a) VALUES (1), (2)").as_deref(), Some("t"));
        for sql in [
            "INSERT INTO app.t VALUES ((SELECT 1 FROM app.u))",
            "INSERT INTO app.t VALUES (-(SELECT 1))",
            "INSERT INTO app.t SELECT * FROM app.u",
            "INSERT INTO app.t VALUES (now())",
            "INSERT INTO app.t VALUES (1) RETURNING (SELECT 1 FROM app.u)",
            "INSERT INTO app.t VALUES (1) ON CONFLICT (a) DO UPDATE SET a = (SELECT 1 FROM app.u)",
            "WITH u AS (SELECT 1 FROM app.u) INSERT INTO app.t VALUES (1)",
            "INSERT INTO app.t WITH u AS (SELECT 1 FROM app.u) VALUES (1)",
            "INSERT INTO app.t VALUES (1) ORDER BY (SELECT 1 FROM app.u)",
            "UPDATE app.t SET a = 1",
            "SELECT 1",
        ] {
            assert_eq!(target_of(sql), None, "{sql}");
        }
    }
}
