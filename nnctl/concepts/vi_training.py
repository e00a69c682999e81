"""`nnctl explain --lang vi`, nửa sau của môn học: chuẩn bị dữ liệu đầu vào, khởi tạo trọng số, các
tầng chuẩn hoá, hạ gradient và tốc độ học, khả năng tổng quát hoá (bản tiếng Anh: en_training.py)."""

TOPICS: dict[str, dict[str, str]] = {
    "preprocessing": {
        "title": "tiền xử lý đầu vào: center, standardize, minmax",
        "what": "Tiền xử lý đưa mọi cột đầu vào về cùng một thang trước khi mạng nhìn thấy chúng. Center trừ đi "
                "trung bình của từng cột; standardize chia thêm cho độ lệch chuẩn; minmax đưa từng cột về đoạn "
                "[0, 1]. Các thống kê này chỉ lấy từ các hàng huấn luyện, rồi được áp dụng nguyên vẹn cho dữ liệu "
                "kiểm định, kiểm tra và dữ liệu cần dự đoán.",
        "formula": "center:      x' = x - mean\nstandardize: x' = (x - mean) / std      (std với ddof = 0)\n"
                   "minmax:      x' = (x - min) / (max - min)",
        "when": "Gần như luôn luôn: standardize là mặc định của nnctl. Các cột có đơn vị rất khác nhau (gam và ki-"
                "lô-mét) kéo mặt mất mát thành một thung lũng hẹp, nơi hạ gradient đi zíc zắc, và đầu vào lớn làm "
                "bão hoà các đơn vị sigmoid, tanh. Các cách khởi tạo trọng số cũng giả định đầu vào có thang cỡ 1.",
        "pitfall": "Tính thống kê trên toàn bộ dữ liệu làm rò rỉ tập kiểm định và tập kiểm tra vào quá trình huấn "
                   "luyện; nnctl chỉ khớp trên các hàng huấn luyện và lưu chúng vào preprocess.npz để predict áp "
                   "dụng đúng phép biến đổi đó. Một cột hằng có std bằng 0 (nnctl để nguyên thang của nó). minmax "
                   "nhạy với ngoại lai: một giá trị cực đoan ép mọi hàng khác lại.",
        "config": "13 cột của wine trải từ khoảng 0.1 đến hơn 1000. Không tiền xử lý, mất mát lúc chưa huấn luyện "
                  "là khoảng 59 (BAD_INIT_LOSS) và độ chính xác kiểm định dừng quanh 0.83; khi đã standardize, "
                  "cùng mạng đó đạt khoảng 0.97.",
    },
    "pca": {
        "title": "phân tích thành phần chính (PCA)",
        "what": "PCA xoay dữ liệu đã trừ trung bình về các hướng mà nó biến thiên nhiều nhất (các trục chính) và "
                "giữ lại k hướng đầu. Các cột tương quan với nhau dồn lại thành vài thành phần, nên mạng nhận ít "
                "đầu vào hơn, không tương quan, mà vẫn giữ được phần lớn phương sai.",
        "formula": "Xc = X - mean;   Xc = U S V.T   (SVD)\nphương sai của thành phần j: lambda_j = S_j^2 / (n - 1)\n"
                   "X_pca = Xc @ V[:, :k];  tỉ lệ phương sai giải thích = lambda_j / sum(lambda)",
        "when": "Nhiều đầu vào tương quan (điểm ảnh, các kênh cảm biến): ít đầu vào hơn thì huấn luyện nhanh hơn và "
                "bỏ được nhiễu ở các hướng phương sai nhỏ. pca_components nhận một số lượng, hoặc tỉ lệ phương "
                "sai cần giữ.",
        "pitfall": "PCA không nhìn vào mục tiêu: một hướng có phương sai nhỏ có thể lại chính là hướng tách các "
                   "lớp. Nó là phép biến đổi tuyến tính. nnctl chỉ trừ trung bình trước PCA (như scikit-learn), nên "
                   "một cột đo bằng đơn vị lớn sẽ lấn át các thành phần; với dữ liệu như vậy hãy chuẩn hoá trước "
                   "hoặc chọn đầu vào khác. Các trục chỉ được khớp trên các hàng huấn luyện.",
        "config": "digits có 64 cột điểm ảnh cùng một thang (0 đến 16), rất hợp với PCA: giữ 90% phương sai còn lại "
                  "21 thành phần và độ chính xác kiểm định vẫn khoảng 0.97.",
    },
    "whitening": {
        "title": "làm trắng dữ liệu (whitening)",
        "what": "Làm trắng đi thêm một bước sau PCA: sau khi xoay về các trục chính, nó chia mỗi thành phần cho "
                "độ lệch chuẩn của thành phần đó, nên các đầu vào không tương quan và đều có phương sai 1. Khi đó "
                "mặt mất mát của tầng đầu trông tròn thay vì bị kéo dài.",
        "formula": "X_white = Xc @ V[:, :k] / sqrt(lambda[:k])      (làm trắng kiểu PCA)\n"
                   "cov(X_white) = I\nlàm trắng ZCA xoay trở lại: X_zca = X_white @ V[:, :k].T",
        "when": "Các đầu vào tương quan mạnh, cho mô hình tuyến tính và mạng nông huấn luyện bằng hạ gradient "
                "thuần, nơi mặt mất mát tròn giúp hội tụ nhanh hơn.",
        "pitfall": "Các thành phần có phương sai rất nhỏ phần lớn là nhiễu, và chia cho độ lệch chuẩn nhỏ của chúng "
                   "thổi phồng nhiễu đó lên ngang với tín hiệu: hãy giữ ít thành phần hơn (pca_components) hoặc "
                   "cộng một eps nhỏ vào lambda. Phép co giãn cũng xoá mất thông tin hướng nào vốn lớn, điều có "
                   "thể quan trọng.",
        "config": "preprocess: whiten dùng cùng pca_components với pca. Trên digits, giữ 90% phương sai, độ chính "
                  "xác kiểm định khoảng 0.96, gần với PCA thường.",
    },
    "init": {
        "title": "khởi tạo trọng số: bằng 0, ngẫu nhiên nhỏ, ngẫu nhiên theo thang",
        "what": "Việc huấn luyện bắt đầu từ trọng số ban đầu, và chúng quyết định tín hiệu có sống sót qua các "
                "tầng hay không. Trọng số toàn 0 (hoặc bằng nhau) làm mọi đơn vị trong một tầng giống hệt nhau; "
                "trọng số ngẫu nhiên nhỏ phá vỡ đối xứng đó nhưng làm tín hiệu co lại ở mỗi tầng; trọng số ngẫu "
                "nhiên theo thang (Xavier, He) giữ cho phương sai ổn định. Bias có thể bắt đầu bằng 0.",
        "formula": "Var(z) = fan_in * Var(w) * E[a^2]   với đầu vào của một đơn vị\ngiữ ổn định:  Var(w) = 1 / "
                   "fan_in (LeCun),  2 / fan_in (He),\n              2 / (fan_in + fan_out) (Xavier)\n"
                   "N(0, 0.01^2), fan_in = 64: mỗi tầng ReLU nhân độ lệch chuẩn với\n  khoảng 0.08 / sqrt(2)",
        "when": "Cứ để init: auto (He cho họ ReLU, Xavier cho các hàm còn lại), trừ khi bạn đang nghiên cứu chính "
                "việc khởi tạo; normal với init_std là để làm thí nghiệm.",
        "pitfall": "Bằng 0: mọi đơn vị nhận cùng một gradient và mãi là bản sao của nhau (SYMMETRY). Quá nhỏ: các "
                   "kích hoạt co dần về 0 qua từng tầng và gradient biến mất theo (ACTIVATION_COLLAPSE). Quá lớn: "
                   "sigmoid và tanh bão hoà, kích hoạt và gradient của ReLU bùng nổ, và mất mát đầu tiên cao hơn "
                   "ln C rất nhiều.",
        "config": "Năm tầng 64 đơn vị ReLU lấy từ N(0, 0.01^2) và huấn luyện bằng SGD dừng ở mức đoán mò: nnctl "
                  "inspect cho thấy độ lệch chuẩn của kích hoạt giảm từ khoảng 1e-2 ở tầng 1 xuống khoảng 1e-5 ở "
                  "tầng 3 và bằng 0 ở tầng 5. Lệnh cuối khởi tạo bằng 0 và nhận cảnh báo ZEROS_INIT cùng phát hiện "
                  "SYMMETRY.",
    },
    "xavier": {
        "title": "khởi tạo Xavier (Glorot)",
        "what": "Khởi tạo Xavier (Glorot và Bengio, 2010) chọn thang cho trọng số ngẫu nhiên sao cho phương sai của "
                "tín hiệu đi xuôi (cần Var(w) = 1 / fan_in) và của gradient đi ngược (cần 1 / fan_out) đều giữ "
                "được gần như không đổi. Nó lấy điểm dung hoà giữa hai yêu cầu đó.",
        "formula": "Var(W) = 2 / (fan_in + fan_out)\nxavier_uniform: W ~ U(-a, a),  a = sqrt(6 / (fan_in + "
                   "fan_out))\nxavier_normal:  W ~ N(0, 2 / (fan_in + fan_out))",
        "when": "Các tầng dùng sigmoid, tanh hoặc tuyến tính, vốn gần tuyến tính quanh 0: init: auto của nnctl "
                "dùng xavier_uniform cho chúng. nnctl dùng hệ số gain bằng 1, như mặc định của torch.",
        "pitfall": "Với ReLU, một nửa đầu vào của mỗi tầng bị triệt tiêu, nên phương sai Xavier chỉ bằng khoảng "
                   "một nửa mức cần thiết: trong mạng ReLU sâu, tín hiệu co lại sau mỗi tầng. Ở đó hãy dùng He. "
                   "Trong nnctl fan_in là số hàng của W (W có kích thước fan_in x fan_out).",
        "config": "circles huấn luyện một tầng tanh; init: auto vốn đã chọn xavier_uniform, nên lệnh này chỉ gọi "
                  "tên nó ra. Một tầng 2 đầu vào, 8 đơn vị lấy trọng số từ U(-0.77, 0.77).",
    },
    "he": {
        "title": "khởi tạo He (Kaiming)",
        "what": "Khởi tạo He (He và cộng sự, 2015) được thiết kế cho ReLU. ReLU triệt tiêu khoảng một nửa đầu vào "
                "của nó, làm mô-men bậc hai của tín hiệu giảm một nửa sau mỗi tầng; nhân đôi phương sai của trọng "
                "số thành 2 / fan_in bù lại đúng phần đó, nên các kích hoạt giữ nguyên thang qua cả một mạng sâu.",
        "formula": "Var(W) = 2 / fan_in\nhe_normal:  W ~ N(0, 2 / fan_in)\nhe_uniform: W ~ U(-a, a),  a = "
                   "sqrt(6 / fan_in)",
        "when": "Các tầng dùng ReLU, leaky ReLU, ELU và phần còn lại của họ ReLU: init: auto của nnctl chọn "
                "he_normal cho chúng (kaiming_normal_ của torch với tham số mặc định).",
        "pitfall": "Với sigmoid hoặc tanh, vốn không triệt tiêu gì, phương sai gấp đôi đẩy giá trị trước kích hoạt "
                   "vào vùng phẳng và các đơn vị bão hoà (nnctl cảnh báo HE_INIT_SATURATING). Hãy để ý chiều nào là "
                   "fan_in: trong nnctl W có kích thước (fan_in, fan_out), còn Linear của torch lưu (fan_out, "
                   "fan_in).",
        "config": "moons với he_normal chính là điều init: auto đã làm cho relu. Lệnh thứ hai dùng khởi tạo He cho "
                  "các đơn vị tanh, và nnctl in cảnh báo HE_INIT_SATURATING trước khi huấn luyện.",
    },
    "batch_norm": {
        "title": "chuẩn hoá theo lô (batch normalization)",
        "what": "Chuẩn hoá theo lô chuẩn hoá giá trị trước kích hoạt của từng đơn vị trên các hàng của lô hiện "
                "tại, rồi để mạng co giãn và dịch chuyển nó bằng hai vector học được, gamma và beta. Nó giữ đầu "
                "vào của mỗi tầng trong một khoảng ổn định, cho phép dùng tốc độ học lớn hơn và giúp mạng sâu dễ "
                "huấn luyện hơn. Lúc suy luận, nó dùng trung bình trượt của các thống kê theo lô.",
        "formula": "với mỗi đơn vị j, trên các hàng của lô:\n  mu_j = mean(Z[:, j]),  var_j = mean((Z[:, j] - "
                   "mu_j)^2)\nZ_hat = (Z - mu) / sqrt(var + eps),  Y = gamma * Z_hat + beta  (eps = 1e-5)\n"
                   "running = (1 - m) * running + m * thống kê của lô   (m = momentum = 0.1)",
        "when": "Các MLP sâu hơn, huấn luyện bằng lô nhỏ từ 32 hàng trở lên. nnctl đặt nó giữa Z = A_prev @ W + b "
                "và hàm kích hoạt, và không bao giờ đặt ở tầng đầu ra.",
        "pitfall": "Thống kê từ vài hàng rất nhiễu, nên lô nhỏ làm việc huấn luyện thất thường và trung bình trượt "
                   "kém chính xác lúc suy luận (BATCHNORM_SMALL_BATCH). Mỗi bước một hàng là bất khả: phương sai của "
                   "một hàng bằng 0 (nnctl từ chối gd: stochastic khi có chuẩn hoá theo lô). Mô hình cư xử khác "
                   "nhau giữa lúc huấn luyện và lúc suy luận, và bias b trở nên thừa (beta đã làm thay việc đó).",
        "config": "classification huấn luyện hai tầng có chuẩn hoá theo lô với lô 64 hàng. Với batch_size 4, "
                  "nnctl cảnh báo BATCHNORM_SMALL_BATCH trước khi huấn luyện.",
    },
    "layer_norm": {
        "title": "chuẩn hoá theo tầng (layer normalization)",
        "what": "Chuẩn hoá theo tầng chuẩn hoá từng hàng trên các đơn vị của một tầng, thay vì từng đơn vị trên "
                "các hàng. Mỗi mẫu được chuẩn hoá riêng, nên kết quả không phụ thuộc vào lô, và lúc huấn luyện "
                "lẫn lúc suy luận đều tính cùng một thứ.",
        "formula": "với mỗi hàng i, trên các đơn vị của tầng:\n  mu_i = mean(Z[i, :]),  var_i = mean((Z[i, :] - "
                   "mu_i)^2)\nY = gamma * (Z - mu) / sqrt(var + eps) + beta",
        "when": "Lô nhỏ, mỗi bước một hàng, hoặc khi suy luận phải khớp hoàn toàn với huấn luyện. Nó chính là "
                "chuẩn hoá theo nhóm với một nhóm duy nhất.",
        "pitfall": "Nó ép các đơn vị của mỗi hàng về trung bình 0 và phương sai 1, làm mất thông tin khi tầng có "
                   "rất ít đơn vị: với một đơn vị, đầu ra luôn bằng beta. Nó chuẩn hoá chung các đơn vị có thể đo "
                   "những thứ chẳng liên quan gì đến nhau.",
        "config": "digits dùng norm: layer trên hai tầng ẩn của nó (128 và 64 đơn vị).",
    },
    "group_norm": {
        "title": "chuẩn hoá theo nhóm (group normalization)",
        "what": "Chuẩn hoá theo nhóm chia các đơn vị của một hàng thành G nhóm bằng nhau và chuẩn hoá riêng từng "
                "nhóm, rồi áp dụng gamma và beta học được. Nó nằm giữa chuẩn hoá theo tầng (một nhóm) và chuẩn "
                "hoá theo thực thể (mỗi nhóm một đơn vị), và giống chuẩn hoá theo tầng, nó không phụ thuộc vào lô.",
        "formula": "các đơn vị của tầng chia thành G nhóm, mỗi nhóm units / G đơn vị\nvới mỗi hàng và nhóm g:  Y "
                   "= gamma * (Z - mu_g) / sqrt(var_g + eps) + beta\nG = 1: chuẩn hoá theo tầng\nG = units: chuẩn "
                   "hoá theo thực thể (vô dụng trong MLP)",
        "when": "Lô nhỏ mà một nhóm duy nhất của chuẩn hoá theo tầng lại quá thô. Đặt số nhóm bằng norm_options: "
                "{groups: G}; G phải chia hết số đơn vị (nnctl có kiểm tra).",
        "pitfall": "Nhóm chỉ có một đơn vị thì không còn gì để chuẩn hoá: mỗi đơn vị trừ đi trung bình của chính "
                   "nó bằng 0, nên tầng luôn cho ra beta bất kể đầu vào (xem instance_norm). Nhóm nhỏ cho thống kê "
                   "nhiễu, giống như lô nhỏ với chuẩn hoá theo lô.",
        "config": "spiral chuẩn hoá 64 đơn vị của mỗi hàng thành 8 nhóm, mỗi nhóm 8 đơn vị.",
    },
    "instance_norm": {
        "title": "chuẩn hoá theo thực thể (instance norm), và vì sao nó không dùng được cho MLP",
        "what": "Trong mạng xử lý ảnh, chuẩn hoá theo thực thể chuẩn hoá từng kênh của từng ảnh trên các điểm ảnh "
                "của nó. Một đơn vị của MLP không có điểm ảnh nào: với một hàng, nó chỉ là một con số. Chuẩn hoá "
                "một nhóm chỉ chứa một giá trị là lấy giá trị đó trừ chính nó, nên kết quả bằng 0 và đầu ra luôn "
                "là beta: tầng quên mất đầu vào của mình và không gradient nào đến được trọng số của nó.",
        "formula": "nhóm chỉ có một đơn vị:  mu = z,  z - mu = 0,  var = 0\nY = gamma * 0 / sqrt(0 + eps) + beta = "
                   "beta   với mọi đầu vào",
        "when": "Không bao giờ trong MLP. Muốn chuẩn hoá không phụ thuộc vào lô thì dùng norm: layer, hoặc norm: "
                "group với nhiều đơn vị trong mỗi nhóm.",
        "pitfall": "Trong nnctl, chuẩn hoá theo thực thể chính là norm: group với số nhóm bằng số đơn vị của tầng, "
                   "và cấu hình như vậy bị từ chối kèm đúng lý do này. Nếu theo sau là ReLU thì mọi đơn vị sẽ cho ra "
                   "relu(beta) = 0 ngay từ đầu, mạng dừng ở mức đoán mò và trọng số không bao giờ nhúc nhích.",
        "config": "groups: 8 của spiral trên một tầng ẩn 8 đơn vị sẽ chính là trường hợp đó: thử riêng --set "
                  "'model.hidden=[8]' thì nnctl từ chối và gọi tên chuẩn hoá theo thực thể. Lệnh dưới đây dùng "
                  "chuẩn hoá theo tầng trên cùng 8 đơn vị đó và đạt khoảng 0.91.",
    },
    "gradient_descent": {
        "title": "hạ gradient (gradient descent)",
        "what": "Hạ gradient cực tiểu hoá hàm mất mát bằng cách lặp đi lặp lại những bước ngược chiều gradient, "
                "hướng mà hàm mất mát tăng nhanh nhất. Mỗi bước thay đổi từng tham số tỉ lệ với mức nó làm hàm "
                "mất mát tăng. Gradient được tính trên những hàng nào sinh ra các biến thể: theo lô đầy đủ, theo "
                "lô nhỏ và ngẫu nhiên.",
        "formula": "theta <- theta - lr * dJ/dtheta\nf(x) = x^2: x <- x - lr * 2x = (1 - 2 lr) x   (hội tụ khi "
                   "0 < lr < 1)",
        "when": "Huấn luyện mọi mạng trong nnctl: optimizer.name chọn quy tắc cập nhật (sgd là quy tắc thuần ở "
                "trên) và train.gd chọn mỗi bước dùng bao nhiêu hàng.",
        "pitfall": "Độ dài bước quan trọng hơn mọi thứ khác (xem learning_rate). Hạ gradient chỉ tìm được một điểm "
                   "mà gradient nhỏ: một cực tiểu địa phương, hoặc trong mạng nơ-ron thường là một điểm yên ngựa hay "
                   "một vùng phẳng. Các đặc trưng khác thang làm nó đi zíc zắc.",
        "config": "regression là hồi quy tuyến tính thuần (hidden: []) huấn luyện bằng hạ gradient theo lô đầy đủ: "
                  "mỗi epoch một bước trên toàn bộ hàng huấn luyện, với tốc độ học giảm dần từ 0.2.",
    },
    "batch": {
        "title": "hạ gradient theo lô đầy đủ (batch)",
        "what": "Hạ gradient theo lô đầy đủ tính gradient trên mọi hàng huấn luyện trước mỗi bước, nên mỗi epoch "
                "chỉ có một bước và gradient là gradient chính xác của mất mát huấn luyện. Đường cong mất mát "
                "trơn tru.",
        "formula": "g = (1 / n) * sum_{i=1..n} grad J_i(theta)\ntheta <- theta - lr * g       (mỗi epoch một "
                   "bước)",
        "when": "Tập dữ liệu nhỏ, bài toán lồi như hồi quy tuyến tính và hồi quy logistic, và khi muốn nghiên cứu "
                "hạ gradient không có nhiễu.",
        "pitfall": "Mỗi bước tốn một lượt qua toàn bộ dữ liệu, nên với dữ liệu lớn thì tiến triển theo thời gian "
                   "rất chậm, và mọi hàng phải nằm vừa trong bộ nhớ. Không có nhiễu, nó có thể dừng ở những cực "
                   "tiểu nhọn hay điểm yên ngựa mà nhiễu của lô nhỏ lẽ ra giúp thoát ra.",
        "config": "train.gd: batch trên moons với SGD thuần ở lr 0.5 cần khoảng 200 epoch (200 bước) để đạt độ "
                  "chính xác kiểm định khoảng 0.96; mỗi bước một hàng (xem sgd) đạt mức đó sau 20 epoch.",
    },
    "minibatch": {
        "title": "hạ gradient theo lô nhỏ (minibatch)",
        "what": "Hạ gradient theo lô nhỏ xáo trộn các hàng huấn luyện ở mỗi epoch và bước một lần cho mỗi lô B "
                "hàng. Gradient của lô là một ước lượng có nhiễu của gradient đầy đủ, tính rẻ bằng phép nhân ma "
                "trận, và mỗi epoch có nhiều bước.",
        "formula": "số bước mỗi epoch = ceil(n / B)\ng_lô = (1 / B) * sum_{i trong lô} grad J_i(theta)\n"
                   "nhiễu của g_lô ~ 1 / sqrt(B)",
        "when": "Mặc định (train.gd: minibatch, batch_size 32). Kích thước lô từ 16 đến 256 là phổ biến; lô lớn "
                "hơn cho gradient mượt hơn và cho phép tốc độ học lớn hơn một chút.",
        "pitfall": "Kích thước lô và tốc độ học ảnh hưởng lẫn nhau: đổi cái này có thể phải chỉnh lại cái kia. Lô "
                   "cuối của một epoch có thể nhỏ hơn. Chuẩn hoá theo lô cần lô đủ lớn để thống kê ổn định.",
        "config": "moons bước trên các lô 32 hàng. Lệnh sweep huấn luyện các kích thước lô 8, 32 và 128 song song "
                  "và in bảng so sánh.",
    },
    "sgd": {
        "title": "hạ gradient ngẫu nhiên (SGD)",
        "what": "Hạ gradient ngẫu nhiên bước sau mỗi hàng huấn luyện, theo thứ tự đã xáo trộn: n bước mỗi epoch, "
                "mỗi bước dùng gradient của một hàng. Các bước rất nhiễu nhưng rẻ, và nhiễu được trung bình hoá "
                "qua nhiều bước.",
        "formula": "với mỗi hàng i, theo thứ tự đã xáo trộn:\n  theta <- theta - lr * grad J_i(theta)",
        "when": "Học trực tuyến và giảng dạy. Trong các thư viện, \"SGD\" thường chỉ quy tắc cập nhật thuần áp dụng "
                "cho lô nhỏ: trong nnctl, optimizer.name: sgd là quy tắc, còn train.gd: stochastic làm mỗi lô chỉ "
                "có một hàng.",
        "pitfall": "Nhiễu làm tham số cứ dao động quanh cực tiểu trừ khi tốc độ học giảm dần, nên hãy dùng lr nhỏ "
                   "hơn so với khi dùng lô. Từng hàng một thì chậm trong NumPy và không dùng được với chuẩn hoá "
                   "theo lô (phương sai của một hàng bằng 0).",
        "config": "Trên moons, mỗi bước một hàng với lr 0.01 đạt độ chính xác kiểm định khoảng 0.96 sau 20 epoch, "
                  "nhưng mỗi epoch gồm hàng trăm bước nhỏ.",
    },
    "learning_rate": {
        "title": "tốc độ học (learning rate)",
        "what": "Tốc độ học lr nhân với mỗi bước gradient. Quá nhỏ thì việc huấn luyện bò chậm; quá lớn thì mỗi "
                "bước nhảy vượt qua đáy thung lũng, nên mất mát dao động hoặc phân kỳ. Một lịch tốc độ học "
                "(schedule) thay đổi lr trong lúc huấn luyện (step, exponential, cosine, plateau, có warmup).",
        "formula": "theta <- theta - lr * g\nf(x) = x^2:  x <- (1 - 2 lr) x\n  0 < lr < 0.5: giảm đều\n"
                   "  0.5 < lr < 1: dao động nhưng vẫn hội tụ\n  lr > 1: phân kỳ",
        "when": "Hãy chỉnh nó trước tiên: nó quan trọng hơn mọi siêu tham số khác. Điểm xuất phát thường gặp: 0.1 "
                "cho sgd, 0.01 khi có momentum, 1e-3 cho adam.",
        "pitfall": "Giá trị đúng phụ thuộc vào bộ tối ưu, kích thước lô và thang của đầu vào. Mất mát tăng lên, dao "
                   "động hay thành NaN thường nghĩa là lr quá lớn (LR_TOO_LARGE); mất mát nằm ngang với những lần "
                   "cập nhật tí hon nghĩa là lr quá nhỏ (LR_TOO_SMALL).",
        "config": "sgd với lr 1e-5 gần như không nhúc nhích: nnctl báo LR_TOO_SMALL (tỉ lệ cập nhật/trọng số "
                  "khoảng 5e-6). lr-find tăng dần tốc độ học và gợi ý một giá trị. adam với lr 0.5 gây ra "
                  "ADAM_HIGH_LR và LR_TOO_LARGE.",
    },
    "momentum": {
        "title": "động lượng (momentum)",
        "what": "Động lượng giữ một vận tốc: mỗi bước cộng gradient mới vào tổng có suy giảm của các gradient "
                "trước đó. Những hướng mà gradient nhất quán sẽ tăng tốc; những hướng mà gradient đổi dấu liên "
                "tục sẽ triệt tiêu nhau, nên chuyển động zíc zắc ngang qua một thung lũng hẹp được giảm bớt. "
                "Động lượng Nesterov tính gradient tại điểm nhìn trước một bước.",
        "formula": "v <- mu * v + g;   theta <- theta - lr * v     (torch.optim.SGD, mu = 0.9)\n"
                   "gradient không đổi: bước hiệu dụng lr / (1 - mu) = 10 * lr",
        "when": "Bất cứ khi nào SGD thuần chậm hoặc đi zíc zắc; optimizer.name: momentum (hoặc nesterov) với "
                "momentum 0.9.",
        "pitfall": "Với mu = 0.9, bước hiệu dụng gấp mười lần lr, nên tốc độ học vốn chỉnh cho SGD thuần giờ có thể "
                   "vượt quá đích: hãy giảm nó khi chuyển sang. Động lượng có thể mang tham số vượt qua cực tiểu "
                   "rồi mới quay lại.",
        "config": "blobs huấn luyện với momentum 0.9 ở lr 0.05 và kết thúc với mất mát kiểm định khoảng 0.16; sgd "
                  "thuần cùng lr, trong cùng 40 epoch, chỉ đạt khoảng 0.23.",
    },
    "adam": {
        "title": "Adam (và AdamW)",
        "what": "Adam kết hợp động lượng với độ dài bước riêng cho từng tham số: nó giữ trung bình trượt của "
                "gradient (m) và của bình phương gradient (v), rồi chia cái thứ nhất cho căn bậc hai của cái thứ "
                "hai. Vì vậy mỗi tham số dịch chuyển khoảng lr mỗi bước, bất kể gradient của nó lớn hay nhỏ. "
                "AdamW áp dụng suy giảm trọng số (weight decay) trực tiếp lên trọng số thay vì qua gradient.",
        "formula": "m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2   (b1 = 0.9, b2 = 0.999)\n"
                   "m_hat = m / (1 - b1^t);   v_hat = v / (1 - b2^t)\n"
                   "theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)    (eps = 1e-8)",
        "when": "Một lựa chọn mặc định chắc chắn cho hầu hết các mạng, với lr khoảng 1e-3 (đến 1e-2 cho MLP nhỏ). "
                "Dùng adamw khi cần suy giảm trọng số.",
        "pitfall": "Vì mỗi bước xấp xỉ lr cho từng tham số, lr từ 0.1 trở lên thường vượt quá đích (ADAM_HIGH_LR). "
                   "weight_decay với adam là L2 cộng vào gradient rồi bị Adam co giãn lại, làm nó yếu đi; adamw "
                   "tách rời nó ra.",
        "config": "moons huấn luyện bằng adam ở lr 0.01. Ở lr 0.5, nnctl cảnh báo ADAM_HIGH_LR trước khi huấn "
                  "luyện, rồi báo LR_TOO_LARGE và các đơn vị ReLU chết.",
    },
    "overfitting": {
        "title": "quá khớp và chưa khớp (overfitting, underfitting)",
        "what": "Mạng quá khớp khi nó học thuộc các hàng huấn luyện, cả phần nhiễu, thay vì học quy luật: mất mát "
                "huấn luyện tiếp tục giảm trong khi mất mát kiểm định quay đầu đi lên. Mạng chưa khớp khi nó quá "
                "nhỏ hoặc huấn luyện quá ngắn để khớp ngay cả các hàng huấn luyện. Khoảng cách giữa mất mát kiểm "
                "định và mất mát huấn luyện đo mức quá khớp.",
        "formula": "khoảng cách = J_val - J_train\nsuy giảm trọng số (L2): J + (wd / 2) * ||W||^2, nên g <- g + wd "
                   "* W",
        "when": "Theo dõi cả hai đường cong ở mọi lần chạy (nnctl plot). Chữa quá khớp: thêm dữ liệu, mạng nhỏ hơn, "
                "suy giảm trọng số, dropout, dừng sớm. Chữa chưa khớp: mạng lớn hơn, nhiều epoch hơn, tốc độ học "
                "tốt hơn.",
        "pitfall": "Đánh giá mô hình bằng mất mát huấn luyện sẽ che mất quá khớp; chọn siêu tham số dựa trên tập "
                   "kiểm tra cũng là quá khớp vào chính tập đó: hãy chỉnh trên tập kiểm định và chỉ báo cáo tập "
                   "kiểm tra một lần (nnctl eval).",
        "config": "moons chỉ với 100 hàng, nhiễu 0.3 và hai tầng 256 đơn vị: sau 300 epoch, mất mát huấn luyện "
                  "còn khoảng 0.0002 trong khi mất mát kiểm định đã leo từ 0.29 (epoch 8) lên khoảng 1.3. nnctl "
                  "plot cho thấy hai đường cong tách xa nhau.",
    },
    "early_stopping": {
        "title": "dừng sớm (early stopping)",
        "what": "Dừng sớm theo dõi một chỉ số trên tập kiểm định và dừng huấn luyện khi chỉ số đó không cải thiện "
                "sau một số epoch (độ kiên nhẫn, patience), rồi khôi phục trọng số của epoch tốt nhất. Nó cắt "
                "việc huấn luyện ngay chỗ quá khớp bắt đầu.",
        "formula": "nếu val_loss < best - min_delta: best = val_loss, wait = 0, giữ trọng số\n"
                   "ngược lại: wait = wait + 1;  dừng khi wait >= patience",
        "when": "Gần như mọi lần chạy có tập kiểm định: train.early_stopping: {monitor: val_loss, patience: 10}. "
                "Nó cũng đỡ cho bạn việc phải chọn số epoch.",
        "pitfall": "Độ kiên nhẫn quá nhỏ sẽ dừng ở một chỗ trũng do nhiễu; tập kiểm định dùng để dừng không còn là "
                   "ước lượng khách quan nữa, nên hãy báo cáo tập kiểm tra. Một lịch tốc độ học được lên kế hoạch "
                   "cho toàn bộ số epoch (cosine) sẽ bị cắt ngang.",
        "config": "breast_cancer dừng sau 20 epoch không có val_loss tốt hơn. Lệnh thứ hai là lần chạy moons quá "
                  "khớp ở trên với patience 20: nó dừng sớm và giữ trọng số của epoch 8 (mất mát kiểm định khoảng "
                  "0.29 thay vì 1.3).",
    },
    "dropout": {
        "title": "dropout (tắt ngẫu nhiên đơn vị)",
        "what": "Trong lúc huấn luyện, dropout đặt đầu ra của mỗi đơn vị ẩn về 0 với xác suất p, độc lập cho mỗi "
                "hàng và mỗi bước, rồi nhân các đơn vị được giữ lại với 1 / (1 - p). Không đơn vị nào có thể dựa "
                "dẫm vào một đơn vị cụ thể khác, giống như cùng lúc huấn luyện nhiều mạng đã bị tỉa bớt. Lúc suy "
                "luận thì không tắt đơn vị nào.",
        "formula": "M ~ Bernoulli(1 - p) cho mỗi đơn vị và mỗi hàng\nA_drop = A * M / (1 - p)      (dropout đảo: "
                   "E[A_drop] = A)\nlúc suy luận: A giữ nguyên",
        "when": "Mạng rộng trên tập dữ liệu nhỏ bị quá khớp; p từ 0.1 đến 0.5 ở các tầng ẩn (nnctl không bao giờ "
                "dropout tầng đầu ra).",
        "pitfall": "Mất mát huấn luyện được tính khi các đơn vị đang bị tắt, nên nó cao hơn và nhiễu hơn so với "
                   "khi không có dropout, và có thể nằm trên cả mất mát kiểm định. Dropout quá nhiều dẫn đến "
                   "chưa khớp. Nó không chữa được mọi kiểu quá khớp: trên tập dữ liệu rất nhỏ, dừng sớm hoặc "
                   "một mạng nhỏ hơn có thể giúp nhiều hơn.",
        "config": "breast_cancer dùng dropout: 0.2 trên cả hai tầng ẩn. Cả hai lần chạy đều đạt độ chính xác kiểm "
                  "định khoảng 0.98, nhưng có dropout thì mất mát huấn luyện kết thúc quanh 0.04, không có thì "
                  "quanh 0.01.",
    },
}
