from tests.support import Driver


def test_join_approve_pay(driver: Driver) -> None:
    driver.say("admin", "/start")
    driver.member("alice")
    driver.member("bob")
    out = driver.say("alice", "/pay DU-003 30 soep", group=True)
    assert "(1) Ja  (2) Nee" in out
    out = driver.say("alice", "ja")
    assert driver.balance("alice") == -30
    assert driver.balance("bob") == 30
