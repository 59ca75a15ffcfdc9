from backstage.control.build.checkrun import Phase, split_phases

MARK = "@@backstage-0011"


def test_output_is_cut_into_phases_at_the_mark_lines():
    output = (
        "a warning before anything\n"
        f'\n{MARK} {{"begin": "check"}}\n'
        'checked\n\n{"static_url": "/s/"}\n'
        f'\n{MARK} {{"end": "check", "code": 0}}\n'
        f'\n{MARK} {{"begin": 0}}\n'
        "no newline at the end"
        f'\n{MARK} {{"end": 0, "code": 0, "skipped": "nothing to do"}}\n'
        f'\n{MARK} {{"begin": 1}}\n'
        "Traceback...\nKilled halfway\n"
    )
    phases = split_phases(output, MARK)
    assert list(phases) == ["", "check", "0", "1"]
    assert phases[""] == Phase("a warning before anything\n")
    assert phases["check"] == Phase('checked\n\n{"static_url": "/s/"}\n', 0)
    assert phases["0"] == Phase("no newline at the end", 0, {"skipped": "nothing to do"})
    assert phases["1"] == Phase("Traceback...\nKilled halfway\n", None)  # never ended


def test_a_mark_of_another_run_or_not_json_is_output():
    output = (
        f'\n{MARK} {{"begin": 0}}\n'
        '@@backstage-ffff {"end": 0, "code": 0}\n'
        f"{MARK} not json\n"
        f'\n{MARK} {{"end": 0, "code": 3}}\n'
    )
    phase = split_phases(output, MARK)["0"]
    assert phase.code == 3
    assert phase.output == f'@@backstage-ffff {{"end": 0, "code": 0}}\n{MARK} not json\n'
