"""The appeal page reads as separate facts: the suggested credit, then the
member's own statement under its own title (they used to run together)."""


def test_the_statement_is_set_apart_from_the_suggested_credit(client, member, file_appeal):
    appeal = file_appeal()
    client.force_login(member.user)
    html = client.get(f"/appeals/{appeal.public_id}/").content.decode()
    credit = html.index('data-testid="suggested-credit"')
    statement = html.index('data-testid="appeal-statement"')
    # The fact list closes before the statement's own titled part opens.
    assert credit < html.index("</dl>", credit) < statement
    assert 'class="card-part"' in html[statement - 40 : statement]
    assert "The game kicked me out" in html[statement:]
