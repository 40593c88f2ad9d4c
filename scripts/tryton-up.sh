#!/usr/bin/env bash
# Copied from the project's shared/erp/tryton-up.sh so that CI and developers run the same bring-up.
# Bring up a throw-away Tryton 8.2 ERP (SQLite) with the master data needed
# for customer invoices, listening on 127.0.0.1:$PORT. Non-interactive.
#
#   LAB=$PWD/tryton-stack PORT=8000 ./up.sh      # start
#   kill "$(cat "$LAB/trytond.pid")"                   # stop
#
# Outputs in $LAB: ids.json (ids + REST key the client needs), trytond.pid,
# trytond.log, timings.txt.
#
# A customer invoice over the REST API (checked against a fresh bring-up):
#   K=<rest_key from ids.json>
#   CTX=$(printf '{"company":1}' | base64 | tr '+/' '-_')   # base64url, padding KEPT
#   curl -X POST -H "Authorization: Bearer $K" -H "X-Tryton-Context: $CTX" \
#        -H 'Content-Type: application/json' \
#        "http://127.0.0.1:$PORT/tryton/rest/model/account.invoice?f=number&f=state&f=total_amount" \
#        -d '{"type":"out","company":1,"currency":1,"party":<customer>,"invoice_address":<customer_address>,
#             "account":<receivable_account>,"journal":<revenue_journal>,"payment_term":<payment_term>,
#             "invoice_date":"2026-11-20","reference":"INV-1",
#             "lines":[["create",[{"description":"Consulting","account":<revenue_account>,
#                                  "quantity":2,"unit_price":"150.00"}]]]}'
#   -> 200 {"id": 1, "__name__": "account.invoice", "number": null, "state": "draft",
#           "total_amount": {"__class__": "Decimal", "decimal": "300.00"}}
#   An unknown line account -> 400 {"status": 400, "message": "The value \"88888\" for field
#   \"Account\" ... is not valid according to its domain.", "description": ""}
#   Note the shape of lines: [["create", [line, ...]]]. Read back with
#   GET /tryton/rest/model/account.invoice/<id>?f=lines.amount&f=total_amount ...
#   Unpadded base64 in X-Tryton-Context gives a 500 ("Incorrect padding").
#
# Parties (examples/tryton/mappings/customers.toml, addresses.toml; checked the same way):
#   POST .../party.party {"name":"Nordlys AS","customer_payment_term":<payment_term>}
#   -> 200 {"id": 7, "__name__": "party.party", "rec_name": "Nordlys AS"}
#   Over REST a party gets no address (proteus and the client add a default one), and an
#   invoice without invoice_address is a 400 ("A value is required for field \"Invoice
#   Address\"": REST runs no on_change); POST .../party.address {"party":7,"city":"Oslo"}
#   -> 200 {"id": 9, ...}.
#   PUT .../party.party/7 {"name":"..."} -> 200 {"id": 7, ...}; {"active": false}
#   deactivates: GET .../party.party/7 still reads it ("active": 0 on SQLite), searches and
#   PUT skip it (PUT -> 404 with an HTML body) unless the context has "active_test": false.
#   A field that is read-only once set is refused on write even with the value it has
#   (400 "You are not allowed to modify the field \"Code\" ..."): party.party code,
#   party.address party.
#   On SQLite, parties created at the same time can get the same code from the party
#   sequence (400 "The code on party must be unique"): create them one at a time.
set -euo pipefail

LAB=${LAB:-$PWD/tryton-stack}
PORT=${PORT:-8000}
DB=${DB:-tryton}                       # database name == part of every URL
ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin}
PYTHON=${PYTHON:-python3}              # needs >= 3.9
TRYTON_SERIES=${TRYTON_SERIES:-8.2}
# fiscal years to create (one per calendar year, monthly periods)
FY_FIRST=${FY_FIRST:-$(( $(date +%Y) - 1 ))}
FY_LAST=${FY_LAST:-$(( $(date +%Y) + 1 ))}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
T0=$(now)
mkdir -p "$LAB/db"
: > "$LAB/timings.txt"

# ---------------------------------------------------------------- 1. install
T=$(now)
if [ ! -x "$LAB/venv/bin/trytond" ]; then
    "$PYTHON" -m venv "$LAB/venv"
    "$LAB/venv/bin/pip" install -q \
        "trytond==${TRYTON_SERIES}.*" \
        "trytond-account-invoice==${TRYTON_SERIES}.*" \
        "proteus==${TRYTON_SERIES}.*"
    # pulls in trytond-{account,account-product,company,country,currency,
    # party,product} of the same series
fi
echo "install_s=$(since "$T")" >> "$LAB/timings.txt"

# ----------------------------------------------------------------- 2. config
cat > "$LAB/trytond.conf" <<EOF
[database]
uri = sqlite://
path = $LAB/db

[web]
listen = 127.0.0.1:$PORT

[queue]
# no worker runs; queued tasks (invoice PDF/ODT rendering after post) are
# then only stored, which makes 'post' ~10x faster. Remove to render.
worker = True
EOF
printf '%s\n' "$ADMIN_PASSWORD" > "$LAB/admin.pass"

# ------------------------------------------- 3. create DB + activate modules
T=$(now)
rm -f "$LAB/db/$DB.sqlite"*
touch "$LAB/db/$DB.sqlite"                 # SQLite backend needs the file
TRYTONPASSFILE="$LAB/admin.pass" "$LAB/venv/bin/trytond-admin" \
    -c "$LAB/trytond.conf" -d "$DB" --all \
    -u account_invoice --activate-dependencies \
    --email admin@example.com < /dev/null > "$LAB/admin.log" 2>&1
echo "db_init_s=$(since "$T")" >> "$LAB/timings.txt"

# ------------------------------------------------------------ 4. master data
cat > "$LAB/setup_master.py" <<'PYEOF'
"""Minimum master data for customer invoices (proteus, in-process)."""
import datetime as dt
import json
import os
import sys
from decimal import Decimal

from proteus import Model, Wizard, config as pconfig

cfg = pconfig.set_trytond(
    database=os.environ['DB'], config_file=os.environ['CONF'])
fy_first, fy_last = int(os.environ['FY_FIRST']), int(os.environ['FY_LAST'])

Party = Model.get('party.party')
Currency = Model.get('currency.currency')
User = Model.get('res.user')

# currency + company (wizard also sets admin's current company)
eur = Currency(name='Euro', code='EUR', symbol='EUR', rounding=Decimal('0.01'))
eur.save()
wiz = Wizard('company.company.config')
wiz.execute('company')
company_party = Party(name='Lab Company')
company_party.save()
wiz.form.party = company_party
wiz.form.currency = eur
wiz.execute('add')
cfg._context = User.get_preferences(True, {})
Company = Model.get('company.company')
company, = Company.find()

# minimal chart of accounts shipped with trytond-account
ModelData = Model.get('ir.model.data')
AccountTemplate = Model.get('account.account.template')
Account = Model.get('account.account')
chart = Wizard('account.create_chart')
chart.execute('account')
chart.form.account_template = AccountTemplate(
    ModelData.get_id('account.account_template_root_en', {}))
chart.form.company = company
chart.execute('create_account')


def account(kind):
    return Account.find([(f'type.{kind}', '=', True), ('closed', '!=', True),
            ('company', '=', company.id)], limit=1)[0]


receivable, payable = account('receivable'), account('payable')
revenue, expense = account('revenue'), account('expense')
chart.form.account_receivable = receivable   # party defaults
chart.form.account_payable = payable
chart.execute('create_properties')

# fiscal years with monthly periods + move/invoice sequences
FiscalYear = Model.get('account.fiscalyear')
SequenceStrict = Model.get('ir.sequence.strict')
SequenceType = Model.get('ir.sequence.type')
move_type, = SequenceType.find([('name', '=', 'Account Move')], limit=1)
inv_type, = SequenceType.find([('name', '=', 'Invoice')], limit=1)
for year in range(fy_first, fy_last + 1):
    fy = FiscalYear(name=str(year), company=company,
        start_date=dt.date(year, 1, 1), end_date=dt.date(year, 12, 31))
    move_seq = SequenceStrict(name=f'Moves {year}',
        sequence_type=move_type, company=company)
    move_seq.save()
    fy.move_sequence = move_seq
    inv_seq = SequenceStrict(name=f'Invoices {year}',
        sequence_type=inv_type, company=company)
    inv_seq.save()
    seq, = fy.invoice_sequences
    seq.out_invoice_sequence = seq.in_invoice_sequence = inv_seq
    seq.out_credit_note_sequence = seq.in_credit_note_sequence = inv_seq
    fy.save()
    fy.click('create_period')

# payment term
PaymentTerm = Model.get('account.invoice.payment_term')
term = PaymentTerm(name='Direct')
term.lines.new(type='remainder')
term.save()

# product (service) whose category carries the revenue account
Category = Model.get('product.category')
cat = Category(name='Services', accounting=True,
    account_revenue=revenue, account_expense=expense)
cat.save()
Uom = Model.get('product.uom')
unit, = Uom.find([('name', '=', 'Unit')])
Template = Model.get('product.template')
tmpl = Template(name='Consulting', default_uom=unit, type='service',
    list_price=Decimal('100'), account_category=cat)
tmpl.save()
product, = tmpl.products

# customer (an empty address is created automatically)
customer = Party(name='ACME Customer', customer_payment_term=term)
customer.save()

# REST API key for admin (created by admin => state 'validated')
UserApp = Model.get('res.user.application')
admin, = User.find([('login', '=', 'admin')])
app = UserApp(user=admin, application='rest')
app.save()

Journal = Model.get('account.journal')
journal, = Journal.find([('type', '=', 'revenue')], limit=1)
json.dump({
    'company': company.id, 'currency': eur.id,
    'receivable_account': receivable.id, 'revenue_account': revenue.id,
    'revenue_journal': journal.id, 'payment_term': term.id,
    'customer': customer.id, 'customer_address': customer.addresses[0].id,
    'product': product.id, 'unit': unit.id, 'rest_key': app.key,
    }, sys.stdout, indent=1)
print()
PYEOF
T=$(now)
DB="$DB" CONF="$LAB/trytond.conf" FY_FIRST="$FY_FIRST" FY_LAST="$FY_LAST" \
    PYTHONWARNINGS=ignore "$LAB/venv/bin/python" "$LAB/setup_master.py" \
    > "$LAB/ids.json" 2> "$LAB/setup_master.log"
echo "master_data_s=$(since "$T")" >> "$LAB/timings.txt"
# pristine copy: to reset between test suites, stop the server, then
#   cp "$LAB/template.sqlite" "$LAB/db/$DB.sqlite"; rm -f "$LAB/db/$DB.sqlite-"*
# and start it again (~1 s) instead of re-running steps 3-4 (~20 s)
"$LAB/venv/bin/python" -c "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.close()" \
    "$LAB/db/$DB.sqlite" "$LAB/template.sqlite"

# ------------------------------------------------------------ 5. run server
T=$(now)
# -d preloads the pool: REQUIRED on 8.2.1, lazy pool init on first request
# is broken (login answers {"error":["'res.user'",""]}).
"$LAB/venv/bin/trytond" -c "$LAB/trytond.conf" -d "$DB" \
    > "$LAB/trytond.log" 2>&1 &
echo $! > "$LAB/trytond.pid"
for _ in $(seq 1 150); do
    if curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"id\":0,\"method\":\"common.db.login\",\"params\":[\"admin\",{\"password\":\"$ADMIN_PASSWORD\"},\"en\"]}" \
        "http://127.0.0.1:$PORT/$DB/rpc/" | grep -q '"result"'; then
        break
    fi
    kill -0 "$(cat "$LAB/trytond.pid")" || { cat "$LAB/trytond.log"; exit 1; }
    sleep 0.2
done
echo "server_start_s=$(since "$T")" >> "$LAB/timings.txt"
echo "total_s=$(since "$T0")" >> "$LAB/timings.txt"

cat "$LAB/timings.txt"
echo "Tryton up: pid $(cat "$LAB/trytond.pid"), JSON-RPC http://127.0.0.1:$PORT/$DB/rpc/ ," \
     "REST http://127.0.0.1:$PORT/$DB/rest/ ; ids in $LAB/ids.json"
